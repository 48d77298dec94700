package proto

import (
	"bytes"
	"errors"
	"io"
)

// ErrOversized is returned by Reader.ReadLine for a line longer than MaxLine.
// It is an *Error with CodeOversized.
var ErrOversized error = &Error{Code: CodeOversized, Message: "line exceeds 65536 bytes", Fatal: true}

// Reader reads newline-terminated lines of at most MaxLine bytes. Unlike
// bufio.Reader it keeps a partial line across a read error such as a
// deadline, so a caller may retry after a timeout without losing its place in
// the stream. It never buffers more than MaxLine bytes.
type Reader struct {
	r     io.Reader
	buf   []byte
	start int // first unconsumed byte
	scan  int // bytes before this index hold no newline
	end   int // end of buffered data
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r}
}

// ReadLine returns the next line without its newline. The slice is valid
// until the next call. It returns ErrOversized when MaxLine bytes arrive
// without a newline, io.ErrUnexpectedEOF when the stream ends inside a line,
// io.EOF when it ends between lines, and the underlying reader's error
// otherwise.
func (r *Reader) ReadLine() ([]byte, error) {
	if r.buf == nil {
		r.buf = make([]byte, MaxLine)
	}
	empty := 0
	for {
		if i := bytes.IndexByte(r.buf[r.scan:r.end], '\n'); i >= 0 {
			line := r.buf[r.start : r.scan+i]
			r.start = r.scan + i + 1
			r.scan = r.start
			return line, nil
		}
		r.scan = r.end
		if r.end-r.start >= MaxLine {
			return nil, ErrOversized
		}
		if r.end == len(r.buf) { // make room: move the partial line to the front
			n := copy(r.buf, r.buf[r.start:r.end])
			r.start, r.scan, r.end = 0, n, n
		}
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if n > 0 {
			empty = 0
			continue // look for a newline first; a sticky error returns next time
		}
		if err == nil {
			if empty++; empty >= 100 {
				return nil, io.ErrNoProgress
			}
			continue
		}
		if errors.Is(err, io.EOF) && r.end > r.start {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
}
