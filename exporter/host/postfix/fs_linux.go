package postfix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// The system calls the scanner makes, kept apart from the cache logic:
// getdents(2) straight into a reused buffer (os.ReadDir allocates an entry
// per file and sorts), one stat(2) per directory, and open/read/close per new
// queue file.

// dirBufSize is the getdents buffer: about 2,000 queue file entries per call.
const dirBufSize = 64 << 10

// maxGetdents bounds the listing of one directory (4 GiB of entries).
const maxGetdents = 1 << 16

// statDir stats a directory, following symbolic links as Postfix does.
func statDir(path string, st *unix.Stat_t) error {
	if err := unix.Stat(path, st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &fs.PathError{Op: "stat", Path: path, Err: unix.ENOTDIR}
	}
	return nil
}

// readDir calls fn with the name and type (unix.DT_*) of every entry of the
// directory but "." and "..". The name is only valid during the call. Types
// come from getdents(2); only filesystems that do not report them
// (DT_UNKNOWN) cost an lstat per entry.
func readDir(path string, buf []byte, fn func(name []byte, typ byte)) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for range maxGetdents {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return &fs.PathError{Op: "getdents", Path: path, Err: err}
		}
		if n == 0 {
			return nil
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64: d_ino, d_off, d_reclen at 16, d_type at 18, d_name at 19.
			if len(b) < 19 {
				return &fs.PathError{Op: "getdents", Path: path, Err: errors.New("truncated entry")}
			}
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return &fs.PathError{Op: "getdents", Path: path, Err: fmt.Errorf("bad entry length %d", reclen)}
			}
			typ, name := b[18], b[19:reclen]
			b = b[reclen:]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if string(name) == "." || string(name) == ".." {
				continue
			}
			if typ == unix.DT_UNKNOWN {
				var st unix.Stat_t
				if err := unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					continue // gone since getdents: it is not there any more
				}
				typ = dirType(st.Mode)
			}
			fn(name, typ)
		}
	}
	return &fs.PathError{Op: "getdents", Path: path, Err: errors.New("directory too large")}
}

func dirType(mode uint32) byte {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return unix.DT_REG
	case unix.S_IFDIR:
		return unix.DT_DIR
	}
	return unix.DT_UNKNOWN // nothing the scanner counts or enters
}

// arrivalKind says how far an arrival time can be trusted.
type arrivalKind uint8

const (
	arrivalUnknown arrivalKind = iota // not read yet
	arrivalRecord                     // from the 'T' record: final
	arrivalMtime                      // no usable 'T' record in the file: its mtime stands in, final
	arrivalRetry                      // the file was being written or had vanished: read it again
)

// openDir opens a directory as the base of openat(2): a path lookup of one
// name per queue file instead of the whole path.
func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// readArrival reads the arrival time, in microseconds since the epoch, from
// the first len(buf) bytes of the queue file name in the directory dirfd
// (path dir). A file that is shorter than buf and ends before its 'T'
// record is still being written by cleanup(8), whose records reach the file
// when its buffer fills or the message ends: its mtime serves for now and
// it is read again later. A file that vanished since it was listed (moved
// to another queue, delivered) is normal: arrivalRetry with no time.
func readArrival(dirfd int, dir, name string, buf []byte) (int64, arrivalKind, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) {
		return 0, arrivalRetry, nil
	}
	if err != nil {
		return 0, arrivalUnknown, &fs.PathError{Op: "open", Path: dir + "/" + name, Err: err}
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf) // a regular file reads in full up to EOF
	if err != nil {
		return 0, arrivalUnknown, &fs.PathError{Op: "read", Path: dir + "/" + name, Err: err}
	}
	usec, perr := parseArrival(buf[:n])
	if perr == nil {
		return usec, arrivalRecord, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, arrivalUnknown, &fs.PathError{Op: "fstat", Path: dir + "/" + name, Err: err}
	}
	mtime := st.Mtim.Sec*1_000_000 + st.Mtim.Nsec/1_000
	if errors.Is(perr, errShort) && n < len(buf) {
		return mtime, arrivalRetry, nil
	}
	return mtime, arrivalMtime, nil
}
