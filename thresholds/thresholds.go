// Package thresholds holds the alert thresholds, defined once in thresholds.json: the
// monitoring mixin (mixin/config.libsonnet) renders the rules and the dashboard from it, and
// check and the status page read it here.
package thresholds

import (
	_ "embed"
	"encoding/json"
	"time"
)

//go:embed thresholds.json
var raw []byte

// Days are the thresholds, in days.
type Days struct {
	// Warning and Critical: how soon a certificate expires to warn, and to page.
	Warning  int `json:"warningDays"`
	Critical int `json:"criticalDays"`
	// Gap: how much longer the UI certificate must live than the earliest k3s certificate for
	// the gap (UI renewed, k3s not) to be the trap.
	Gap int `json:"gapDays"`
	// UIWarning: how soon the UI certificate expires to warn (Rancher renews it at 7).
	UIWarning int `json:"uiWarningDays"`
	// CAWarning: how soon the CA of the cacerts setting expires to warn (nothing renews it, and
	// every downstream agent pins it); CAChange: how long a change of the cacerts checksum is
	// reported.
	CAWarning int `json:"caWarningDays"`
	CAChange  int `json:"caChangeDays"`
	// OwnerGrace: how long past its renewal point an owner that renews a certificate itself is
	// still on time — dynamiclistener looks at its certificate every 6 hours (v0.3.1
	// listener.go:162-190); hours.
	OwnerGrace int `json:"ownerGraceHours"`
}

// Default are the thresholds of the shipped rules.
var Default = func() Days {
	var d Days
	if err := json.Unmarshal(raw, &d); err != nil {
		panic("thresholds.json: " + err.Error())
	}
	return d
}()

const day = 24 * time.Hour

// WarningIn and CriticalIn are the warning and critical thresholds as durations.
func (d Days) WarningIn() time.Duration  { return time.Duration(d.Warning) * day }
func (d Days) CriticalIn() time.Duration { return time.Duration(d.Critical) * day }
func (d Days) GapOf() time.Duration      { return time.Duration(d.Gap) * day }

// OwnerGraceOf is the owner's grace as a duration.
func (d Days) OwnerGraceOf() time.Duration { return time.Duration(d.OwnerGrace) * time.Hour }
