package jscompat

import (
	"strconv"
	"time"
)

// DateUTCString is Date.prototype.toUTCString: "Wed, 01 May 2024 13:05:09 GMT".
func DateUTCString(t time.Time) string {
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
}

// Parts of a date that DateLocaleString formats.
const (
	LocaleDate = 1 << iota // toLocaleDateString: "5/1/2024"
	LocaleTime             // toLocaleTimeString: "1:05:09 PM"
	LocaleBoth = LocaleDate | LocaleTime
)

// DateLocaleString is Date.prototype.toLocaleString (parts LocaleBoth), toLocaleDateString
// and toLocaleTimeString in the en-US locale, in t's location: "5/1/2024, 1:05:09 PM", as
// Node.js formats them.
func DateLocaleString(t time.Time, parts int) string {
	var b []byte
	if parts&LocaleDate != 0 {
		b = strconv.AppendInt(b, int64(t.Month()), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(t.Day()), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(t.Year()), 10)
	}
	if parts == LocaleBoth {
		b = append(b, ", "...)
	}
	if parts&LocaleTime != 0 {
		h := t.Hour() % 12
		if h == 0 {
			h = 12
		}
		b = strconv.AppendInt(b, int64(h), 10)
		b = append(b, t.Format(":04:05 PM")...)
	}
	return string(b)
}
