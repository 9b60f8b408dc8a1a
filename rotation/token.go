package rotation

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxTokenSize bounds what is read of the token file: a bearer token is a few dozen bytes.
const maxTokenSize = 4 << 10

// TokenFile is the API's bearer token, read from its file with a size limit, and read again
// when the file changes — replacing it revokes the old token at the next request. A file that
// cannot be read, is empty or too large accepts no token.
type TokenFile struct {
	path string

	mu    sync.Mutex
	stamp fileStamp
	sum   [sha256.Size]byte
	err   error
}

// fileStamp tells whether a file changed: size, modification time and inode.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// OpenToken reads the token file, and reports whether it is readable by group or others.
func OpenToken(path string) (*TokenFile, bool, error) {
	t := &TokenFile{path: path}
	info, err := t.reload()
	if err != nil {
		return nil, false, err
	}
	return t, info.Mode().Perm()&0o077 != 0, nil
}

// reload reads the file when it changed since the last read.
func (t *TokenFile) reload() (os.FileInfo, error) {
	info, err := os.Stat(t.path)
	if err != nil {
		t.err = fmt.Errorf("token file: %w", err)
		return nil, t.err
	}
	stamp := fileStamp{size: info.Size(), mtime: info.ModTime(), ino: inode(info)}
	if stamp == t.stamp && t.err == nil {
		return info, nil
	}
	t.stamp, t.err = stamp, nil
	token, err := readToken(t.path)
	if err != nil {
		t.err = err
		return nil, err
	}
	t.sum = sha256.Sum256([]byte(token))
	return info, nil
}

func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenSize+1))
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if len(data) > maxTokenSize {
		return "", fmt.Errorf("token file %s holds more than %d bytes: not a bearer token", path, maxTokenSize)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", errors.New("token file " + path + " is empty")
	}
	return token, nil
}

// Matches tells, in constant time, whether given is the token the file holds now.
func (t *TokenFile) Matches(given string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.reload(); err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}

// Err is why the file accepts no token now, if it does not.
func (t *TokenFile) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.reload()
	return err
}

func inode(info os.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
