package mailq

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxEnvelope bounds the envelope line of a spool file (100 recipients fit many times).
const maxEnvelope = 256 << 10

// path is the spool file of a message.
func (q *Queue) path(id string) string { return filepath.Join(q.opts.Dir, id+".mail") }

// write creates the spool file of env: its envelope line, then the message that render
// writes (rendered in memory first: the envelope records its size, so that a file cut short
// by a crash is recognised when the spool is loaded). It returns the message.
func (q *Queue) write(env *envelope, render func(io.Writer) error) ([]byte, error) {
	var msg bytes.Buffer
	if err := render(&msg); err != nil {
		return nil, err
	}
	env.Size = int64(msg.Len())
	head, err := envelopeLine(env)
	if err != nil {
		return nil, err
	}
	path := q.path(env.ID)
	f, err := openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mail spool: %w", err)
	}
	_, err = f.Write(append(head, msg.Bytes()...))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("mail spool: %w", err)
	}
	return msg.Bytes(), nil
}

// message returns the message of env: from memory when it is kept there, else read from its
// spool file (closed by the caller).
func (q *Queue) message(env *envelope, scratch []byte) (io.Reader, io.Closer, error) {
	if env.data != nil {
		return bytes.NewReader(env.data), io.NopCloser(nil), nil
	}
	f, off, err := openMessage(q.path(env.ID), scratch)
	if err != nil {
		return nil, nil, err
	}
	return io.NewSectionReader(f, off, env.Size), f, nil
}

// rewrite replaces the envelope of a message already in the spool.
func (q *Queue) rewrite(env *envelope) error {
	f, off, err := openMessage(q.path(env.ID), nil)
	if err != nil {
		return err
	}
	defer f.Close()
	head, err := envelopeLine(env)
	if err != nil {
		return err
	}
	return writeAtomic(q.path(env.ID), func(w io.Writer) error {
		if _, err := w.Write(head); err != nil {
			return err
		}
		_, err := io.Copy(w, io.NewSectionReader(f, off, 1<<62))
		return err
	})
}

func envelopeLine(env *envelope) ([]byte, error) {
	b, err := json.Marshal(env) // escapes line breaks: one line
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// readEnvelope reads the envelope of a spool file, and the size of its message.
func readEnvelope(path string) (*envelope, error) {
	f, off, err := openMessage(path, nil)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var env envelope
	head := make([]byte, off)
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(head, &env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size()-off != env.Size {
		return nil, fmt.Errorf("message cut short: %d of %d bytes", fi.Size()-off, env.Size)
	}
	return &env, nil
}

// openMessage opens a spool file and returns the offset of its message (after the envelope
// line). scratch, when not nil, is a buffer to read with (a worker's: no allocation per
// message).
func openMessage(path string, scratch []byte) (*os.File, int64, error) {
	f, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("mail spool: %w", err)
	}
	if len(scratch) == 0 {
		scratch = make([]byte, 4096)
	}
	var off int64
	for off < maxEnvelope {
		n, err := f.ReadAt(scratch, off)
		if i := bytes.IndexByte(scratch[:n], '\n'); i >= 0 {
			return f, off + int64(i) + 1, nil
		}
		off += int64(n)
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("mail spool: no envelope line: %w", err)
		}
	}
	f.Close()
	return nil, 0, errors.New("mail spool: envelope line too long")
}

// writeAtomic writes a file through a synced temporary file and a rename.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("mail spool: %w", err)
	}
	bw := bufio.NewWriterSize(f, 32<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
