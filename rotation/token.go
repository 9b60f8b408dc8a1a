package rotation

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"syscall"
)

// maxTokenSize bounds what is read of the token file: a bearer token is a few dozen bytes.
const maxTokenSize = 4 << 10

// MinTokenBits is the least entropy a token may have, judged by its length and alphabet: at 128
// bits no one guesses it, whatever the rate, so the failed-token limiter only saves resources.
const MinTokenBits = 128

// TokenFile is the API's bearer token, read from its file at every check, so that rewriting the
// file revokes the old token at the next request, whatever the rewrite kept of its size, times
// or inode (cp -p, rsync -a, install -p). A file that cannot be read, is not a regular file, is
// empty, too large or too weak accepts no token.
type TokenFile struct{ path string }

// OpenToken checks the token file, and reports whether it is readable by group or others.
func OpenToken(path string) (*TokenFile, bool, error) {
	_, info, err := readToken(path)
	if err != nil {
		return nil, false, err
	}
	return &TokenFile{path: path}, info.Mode().Perm()&0o077 != 0, nil
}

// readToken reads a token from a regular file. The file is opened without blocking, so that a
// named pipe is refused rather than waited on for ever.
func readToken(path string) (string, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("token file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", nil, fmt.Errorf("token file %s is not a regular file (%s)", path, info.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(data) > maxTokenSize {
		return "", nil, fmt.Errorf("token file %s holds more than %d bytes: not a bearer token", path, maxTokenSize)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", nil, errors.New("token file " + path + " is empty")
	}
	if bits := TokenBits(token); bits < MinTokenBits {
		return "", nil, fmt.Errorf("token file %s: a token of %d characters from its alphabet holds at most %d bits, under %d: make one with openssl rand -hex 32",
			path, len(token), bits, MinTokenBits)
	}
	return token, info, nil
}

// alphabets a token may be drawn from, smallest first, with their size.
var alphabets = []struct {
	chars string
	size  float64
}{
	{"0123456789", 10},
	{"0123456789abcdef", 16},
	{"0123456789ABCDEF", 16},
	{"0123456789abcdefghijklmnopqrstuvwxyz", 36},
	{"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", 36},
	{"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/=-_", 64}, // base64 and base64url
}

// TokenBits is the most entropy a token can hold: its length times the bits of the smallest
// common alphabet it is drawn from (printable ASCII, 95 characters, else a byte each).
func TokenBits(token string) int {
	size := 256.0
	for _, a := range alphabets {
		if strings.Trim(token, a.chars) == "" {
			size = a.size
			break
		}
	}
	if size == 256 && isPrintableASCII(token) {
		size = 95
	}
	return int(float64(len(token)) * math.Log2(size))
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Matches tells, in constant time, whether given is the token the file holds now.
func (t *TokenFile) Matches(given string) bool {
	token, _, err := readToken(t.path)
	if err != nil {
		return false
	}
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
