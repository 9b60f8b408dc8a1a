package rotation

import (
	"os"
	"path/filepath"
)

// writeDurably replaces file with data: written to tmpName beside it and fsynced, checked by
// check when given, renamed over file, and the directory fsynced. A crash leaves the old file
// or the new one, never a part; a temporary file that failed is removed. Backups and journals
// are written this way.
func writeDurably(file, tmpName string, data []byte, check func(tmp string) error) error {
	dir := filepath.Dir(file)
	tmp := filepath.Join(dir, tmpName)
	err := writeSynced(tmp, data)
	if err == nil && check != nil {
		err = check(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// writeSynced writes data to file (0600) and fsyncs it.
func writeSynced(file string, data []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs a directory, so that a rename or removal in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
