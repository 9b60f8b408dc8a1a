package rotation

import "time"

// State is where a job is.
type State string

// Job states.
const (
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
)

// Kind is what a job does.
type Kind string

// Job kinds.
const (
	KindRotate  Kind = "rotate"
	KindRestore Kind = "restore"
)

// Trigger is what started a job.
type Trigger string

// Triggers.
const (
	TriggerAPI  Trigger = "api"
	TriggerCLI  Trigger = "cli"
	TriggerAuto Trigger = "auto"
)

// Outcome is how a step ended, or that it runs.
type Outcome string

// Step outcomes.
const (
	StepRunning Outcome = "running"
	StepOK      Outcome = "ok"
	StepFailed  Outcome = "failed"
	StepSkipped Outcome = "skipped"
)

// StepName names a step of a job.
type StepName string

// The steps, in the order a job may run them.
const (
	StepPreflight     StepName = "preflight"
	StepBackup        StepName = "backup"
	StepDeleteSecret  StepName = "delete-secret"
	StepStop          StepName = "stop"
	StepRemove        StepName = "remove"
	StepCopy          StepName = "copy"
	StepStart         StepName = "start"
	StepSecondStart   StepName = "second-start"
	StepVerify        StepName = "verify"
	StepRestoreObjs   StepName = "restore-secrets"
	StepRecover       StepName = "recover"
	StepRestoreBackup StepName = "restore-backup"
)

// Step is one step of a job as reported.
type Step struct {
	Name    StepName  `json:"name"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Outcome Outcome   `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// Report is a job as the API and the CLI show it.
type Report struct {
	ID        string   `json:"id"`
	Kind      Kind     `json:"kind"`
	Trigger   Trigger  `json:"trigger"`
	Container string   `json:"container"`
	Strategy  Strategy `json:"strategy,omitempty"` // the strategy that ran
	// RequestedStrategy is what was asked for; Reason says why Strategy was chosen.
	RequestedStrategy Strategy `json:"requested_strategy,omitempty"`
	Reason            string   `json:"reason,omitempty"`
	DryRun            bool     `json:"dry_run,omitempty"`
	State             State    `json:"state"`
	Backup            string   `json:"backup,omitempty"`
	Plan              []string `json:"plan,omitempty"`
	// Secrets are the in-cluster certificates asked for (namespace/name).
	Secrets []string `json:"secrets,omitempty"`
	// DeleteSecrets are the secrets of the embedded cluster the plan deletes, as namespace/name,
	// and DeleteWhy says why each; DeleteWebhooks the MutatingWebhookConfigurations deleted with
	// them.
	DeleteSecrets  []string          `json:"delete_secrets,omitempty"`
	DeleteWhy      map[string]string `json:"delete_why,omitempty"`
	DeleteWebhooks []string          `json:"delete_webhook_configurations,omitempty"`
	Steps          []Step            `json:"steps"`
	NotAfterBefore map[string]string `json:"not_after_before,omitempty"`
	NotAfterAfter  map[string]string `json:"not_after_after,omitempty"`
	Error          string            `json:"error,omitempty"`
	Created        time.Time         `json:"created"`
	Finished       time.Time         `json:"finished,omitzero"`
	// StartedAt is when the job last started the container: its log since then is checked.
	StartedAt time.Time `json:"started_at,omitzero"`
	// StartRequested is when the job asked for that start: a server that fails within
	// milliseconds may log before the engine's StartedAt, and its log is read from here.
	StartRequested time.Time `json:"start_requested,omitzero"`
	// ContainerState is the state the job left the container in, as watched at its end:
	// running, restarting (crash-looping), exited.
	ContainerState string `json:"container_state,omitempty"`
}
