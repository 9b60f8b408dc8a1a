// Package readerr names the reasons a certificate source can fail to read something.
// Every reason is a label value of rancher_cert_exporter_read_errors_total.
package readerr

import (
	"errors"
	"fmt"
)

const (
	Empty             = "empty"          // a certificate file with no bytes
	NoCertificate     = "no_certificate" // a .crt/.pem file with no PEM block at all (junk)
	ParseError        = "parse_error"    // a PEM or JSON block that does not parse
	TooLarge          = "too_large"      // a file over the size limit
	Symlink           = "symlink"        // a link that leaves the tree, dangles or loops
	UnsafePath        = "unsafe_path"    // a tar entry whose name escapes the tree
	Unreadable        = "unreadable"     // permission denied or an I/O error
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

// All lists every reason, for pre-initialising counters.
var All = []string{
	Empty, NoCertificate, ParseError, TooLarge, Symlink, UnsafePath, Unreadable, NotFound,
	ContainerNotFound, DockerUnreachable, DockerError, UIUnreachable, UIHandshake, NoUIAddress,
	APIUnreachable, APIAuth, APIError, Timeout,
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
