package autorotate

import (
	"strings"
	"testing"
	"time"
)

func TestWindowNext(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		window, now, want string
	}{
		// 2026-11-29 is a Sunday.
		{"Sun 02:00-04:00 Europe/Berlin", "2026-11-27 12:00", "2026-11-29 02:00"},
		{"Sun 02:00-04:00 Europe/Berlin", "2026-11-29 03:59", "2026-11-29 03:59"},
		{"Sun 02:00-04:00 Europe/Berlin", "2026-11-29 04:00", "2026-12-06 02:00"},
		{"Mon-Fri 22:00-02:00 Europe/Berlin", "2026-11-28 01:30", "2026-11-28 01:30"}, // Friday's window, past midnight
		{"Mon-Fri 22:00-02:00 Europe/Berlin", "2026-11-28 02:00", "2026-11-30 22:00"},
		{"Sat,Sun 00:00-01:00 Europe/Berlin", "2026-11-27 23:00", "2026-11-28 00:00"},
		{"Fri-Mon 10:00-11:00 Europe/Berlin", "2026-11-25 12:00", "2026-11-27 10:00"}, // a range across Sunday
		{"03:00-04:00 Europe/Berlin", "2026-11-27 12:00", "2026-11-28 03:00"},
		// 2027-03-28 02:00 Berlin does not exist (DST): Go normalises it to 03:00 CEST.
		{"Sun 02:30-03:30 Europe/Berlin", "2027-03-27 12:00", "2027-03-28 03:30"},
	} {
		w, err := ParseWindow(tc.window)
		if err != nil {
			t.Fatalf("%s: %v", tc.window, err)
		}
		if got := w.Next(at(tc.now)); !got.Equal(at(tc.want)) {
			t.Errorf("%s at %s: next %s, want %s", tc.window, tc.now, got.In(berlin), tc.want)
		}
	}
	utc, _ := ParseWindow("Sun 02:00-04:00")
	if got := utc.Next(at("2026-11-27 12:00")); !got.Equal(time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("a window without a zone is in UTC: %s", got)
	}
}

func TestWindowAnyTime(t *testing.T) {
	for _, s := range []string{"", "any", "ANY"} {
		w, err := ParseWindow(s)
		now := time.Now()
		if err != nil || !w.Always() || !w.Next(now).Equal(now) {
			t.Errorf("%q: %v %v", s, w, err)
		}
	}
}

func TestWindowErrors(t *testing.T) {
	for _, tc := range []struct{ window, says string }{
		{"Sun", "no hours"},
		{"Sun 2-4", "HH:MM-HH:MM"},
		{"Sun 02:00", "HH:MM-HH:MM"},
		{"Sun 25:00-26:00", "HH:MM-HH:MM"},
		{"Sun 02:00-02:00", "same time"},
		{"Sunday 02:00-04:00", "days"},
		{"Sun 02:00-04:00 Mars/Olympus", "time zone"},
		{"Sun 02:00-04:00 UTC extra", "unexpected"},
	} {
		if _, err := ParseWindow(tc.window); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: %v, want an error saying %q", tc.window, err, tc.says)
		}
	}
}
