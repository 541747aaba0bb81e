package postfix

import (
	"errors"
)

// A queue file is a stream of records (Postfix src/global/record.c): a type
// byte, the data length in 7-bit groups, least significant first, the high
// bit set on every group but the last, then the data. cleanup(8) starts a
// queue file with the size record 'C' and then the arrival time 'T';
// postdrop(1) starts a maildrop file with 'T' directly.
const (
	recTime    = 'T' // arrival time: "seconds microseconds", or "seconds" alone in old files
	recMessage = 'M' // the message content begins: the envelope had no arrival time
	recEnd     = 'E' // end of the queue file
)

// headSize is how much of a queue file is read for its arrival time: the
// records before 'T' take 97 bytes in Postfix 3.x ('C' holds six 15-wide
// numbers), so 512 bytes leave room for older and future layouts at the
// cost of one page read.
const headSize = 512

var (
	// errShort means the data ended before the arrival time record did: a
	// file that cleanup(8) is still writing, or one longer than headSize
	// whose arrival time lies beyond it.
	errShort    = errors.New("queue file ends before its arrival time record")
	errNoTime   = errors.New("queue file envelope has no arrival time record")
	errLength   = errors.New("queue file record length does not fit 32 bits")
	errTimeData = errors.New("queue file arrival time record is not \"seconds [microseconds]\"")
)

// parseArrival returns the arrival time, in microseconds since the epoch,
// recorded at the start of a queue file.
func parseArrival(b []byte) (int64, error) {
	for len(b) > 0 { // every record consumes at least two bytes
		typ := b[0]
		n, rest, err := recordLength(b[1:])
		if err != nil {
			return 0, err
		}
		switch typ {
		case recMessage, recEnd:
			return 0, errNoTime
		case recTime:
			if n > len(rest) {
				return 0, errShort
			}
			return parseTime(rest[:n])
		}
		if n > len(rest) {
			return 0, errShort
		}
		b = rest[n:]
	}
	return 0, errShort
}

// recordLength decodes a record length as rec_get_raw() does: at most five
// 7-bit groups, the value below 2^31.
func recordLength(b []byte) (int, []byte, error) {
	var n uint64
	for i := 0; i < 5; i++ {
		if i == len(b) {
			return 0, nil, errShort
		}
		n |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if n > 1<<31-1 {
				return 0, nil, errLength
			}
			return int(n), b[i+1:], nil
		}
	}
	return 0, nil, errLength
}

// parseTime parses the data of a 'T' record: "%ld %ld" (seconds and
// microseconds, as Postfix 3.x writes it) or "%ld" (seconds, as older
// releases did).
func parseTime(b []byte) (int64, error) {
	sec, b := digits(b, 12) // 12 digits reach year 33658
	if sec < 0 {
		return 0, errTimeData
	}
	usec := int64(0)
	if len(b) > 0 {
		if b[0] != ' ' {
			return 0, errTimeData
		}
		usec, b = digits(b[1:], 6)
		if usec < 0 {
			return 0, errTimeData
		}
	}
	if len(b) != 0 {
		return 0, errTimeData
	}
	return sec*1_000_000 + usec, nil
}

// digits parses 1 to most leading decimal digits; -1 when there are none or
// more than most.
func digits(b []byte, most int) (int64, []byte) {
	v, i := int64(0), 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i == most {
			return -1, b
		}
		v = v*10 + int64(b[i]-'0')
	}
	if i == 0 {
		return -1, b
	}
	return v, b[i:]
}
