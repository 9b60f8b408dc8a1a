package printable

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"server-ca.crt":                      "server-ca.crt",
		"kube-system/k3s-serving/tls.crt":    "kube-system/k3s-serving/tls.crt",
		"Zertifikat für Grüße ✓":             "Zertifikat für Grüße ✓",
		"bad\xff\xfename.crt":                `bad\xff\xfename.crt`,
		"\x1b[2J\x1b[H\x1b[32mALL OK\x1b[0m": `\x1b[2J\x1b[H\x1b[32mALL OK\x1b[0m`,
		"\x1b]0;pwned\a":                     `\x1b]0;pwned\x07`,
		"new\nline.crt":                      `new\nline.crt`,
		"tab\tand\rreturn":                   `tab\tand\rreturn`,
		"evil\u202egpj.crt":                  `evil\u202egpj.crt`,
		"iso\u2066late\u2069 \u200f \u061c":  `iso\u2066late\u2069 \u200f \u061c`,
		"line\u2028sep":                      `line\u2028sep`,
		"c1\u009bcontrol \x7f":               `c1\x9bcontrol \x7f`,
		`a\x1b literally`:                    `a\x1b literally`, // kept: escaping twice changes nothing
		"quo\"te's":                          "quo\"te's",
		"\ufffd is a character":              "\ufffd is a character",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("bad\xff\x1b[2J\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for _, r := range out {
			if unsafe(r) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, out, r)
			}
		}
		if again := Escape(out); again != out {
			t.Fatalf("Escape(Escape(%q)) = %q, not %q", s, again, out)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q is not valid UTF-8", s, out)
		}
	})
}
