// Package readerr names the reasons a certificate source can fail to read something.
// Every reason is a label value of rancher_cert_exporter_read_errors_total, started at 0 for
// the sources whose reads can fail with it.
package readerr

import (
	"errors"
	"fmt"
)

const (
	Empty             = "empty"          // a certificate file with no bytes
	NoCertificate     = "no_certificate" // a .crt/.pem file with no PEM block at all (junk)
	ParseError        = "parse_error"    // a PEM or JSON block that does not parse
	TooLarge          = "too_large"      // a file over the size limit, or a tree over its bounds
	NotRegular        = "not_regular"    // a certificate name on a named pipe or a device
	Symlink           = "symlink"        // a link that leaves the tree, dangles or loops
	UnsafePath        = "unsafe_path"    // a tar entry whose name escapes the tree
	Unreadable        = "unreadable"     // permission denied or an I/O error
	InvalidName       = "invalid_name"   // a file name that is not valid UTF-8: never a label value
	InvalidDate       = "invalid_date"   // a certificate's expiry, as Rancher wrote it, that is no date
	NotFound          = "not_found"      // a configured path or glob matched nothing
	ContainerNotFound = "container_not_found"
	DockerUnreachable = "docker_unreachable"
	DockerError       = "docker_error" // the engine answered with an error
	UIUnreachable     = "ui_unreachable"
	UIHandshake       = "ui_handshake"
	NoUIAddress       = "no_ui_address"   // nothing published on 443 and no container IP
	APIUnreachable    = "api_unreachable" // the container's k3s API does not answer (or the container is not running)
	APIAuth           = "api_auth"        // the k3s API refused the container's admin credentials
	APIError          = "api_error"       // the k3s API answered with an error
	Timeout           = "timeout"         // a read did not end within the scrape's budget
)

// The reasons each kind of read can fail with: a source's counters are pre-initialised with
// the reasons of the reads it makes, and no others.
var (
	// EngineReads: anything read of a container through the Docker engine (a read that does
	// not end in time included).
	EngineReads = []string{ContainerNotFound, DockerUnreachable, DockerError, Unreadable, Timeout}
	// FileReads: certificate files, in a container's tree or on the host.
	FileReads = []string{Empty, NoCertificate, ParseError, TooLarge, NotRegular, Symlink, Unreadable, NotFound, InvalidName}
	// ArchiveReads: a tree streamed by the engine's archive endpoint.
	ArchiveReads = []string{UnsafePath}
	// APIReads: the container's cluster API, through the kubeconfig read from the container.
	APIReads = []string{APIUnreachable, APIAuth, APIError, NotFound, TooLarge, Empty, NoCertificate, ParseError}
	// UIReads: the handshake with the Rancher UI.
	UIReads = []string{UIUnreachable, UIHandshake, NoUIAddress, Unreadable, Timeout}
)

// Of joins kinds of reads into one list of reasons, each once.
func Of(kinds ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range kinds {
		for _, r := range k {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// Error is a read failure with the reason it is counted under.
type Error struct {
	Reason string
	Err    error
}

// Error is the message alone: whoever shows it shows the reason beside it once.
func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New wraps err with a reason.
func New(reason string, err error) error { return &Error{Reason: reason, Err: err} }

// Newf formats a new error with a reason.
func Newf(reason, format string, args ...any) error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of the first Error in err's chain, or unreadable.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return Unreadable
}

// sentences say in a few words what each reason means to an operator, for a page that should
// not show an engine's raw error.
var sentences = map[string]string{
	Empty:             "The file is empty.",
	NoCertificate:     "The file holds no certificate.",
	ParseError:        "The certificate does not parse.",
	TooLarge:          "More than one read takes: too large or too many.",
	NotRegular:        "Not a regular file (a pipe or a device).",
	Symlink:           "A link that leaves the tree, dangles or loops.",
	UnsafePath:        "An archive entry that climbs out of its directory.",
	Unreadable:        "It cannot be read (permission denied, or an I/O error).",
	InvalidName:       "A file name that is not valid UTF-8.",
	InvalidDate:       "An expiry date that is no date.",
	NotFound:          "Nothing is where the certificates should be.",
	ContainerNotFound: "The container is gone.",
	DockerUnreachable: "The Docker engine does not answer.",
	DockerError:       "The Docker engine answered with an error.",
	UIUnreachable:     "The Rancher UI does not answer.",
	UIHandshake:       "The TLS handshake with the Rancher UI failed.",
	NoUIAddress:       "There is no address to reach the Rancher UI at.",
	APIUnreachable:    "The container's API server does not answer (it is stopped, starting or crash-looping).",
	APIAuth:           "The container's API server refuses its own admin credentials.",
	APIError:          "The container's API server answered with an error.",
	Timeout:           "The read did not end in time.",
}

// Sentence is what a reason means, in a few words.
func Sentence(reason string) string {
	if s, ok := sentences[reason]; ok {
		return s
	}
	return "It could not be read."
}
