// Package printable makes text from outside — file names, certificate subjects, messages —
// safe to print to a terminal or a page: it cannot move the cursor, clear the screen, set a
// title, reorder what follows it or split a row.
package printable

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape writes every byte that is not valid UTF-8 as \xNN, and every control character,
// bidirectional formatting character and line or paragraph separator as a Go escape (\n, \x1b,
// \u202e). The rest, backslashes included, is kept: escaping twice changes nothing, so a name
// escaped where it was read prints the same wherever it is shown.
func Escape(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unsafe(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// isSafe tells whether Escape would leave s as it is.
func isSafe(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unsafe(r) {
			return false
		}
	}
	return true
}

// unsafe: C0 and C1 controls and DEL, and the formatting characters that change how the text
// after them is shown (bidirectional marks, embeddings, overrides and isolates; line and
// paragraph separators).
func unsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}
