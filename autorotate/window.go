package autorotate

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // the image is FROM scratch: no zoneinfo on disk
)

// Window is when automatic rotations may start: on some days of the week, between two times of
// day, in a time zone. The zero Window is always open.
type Window struct {
	days       [7]bool // by time.Weekday
	start, end time.Duration
	loc        *time.Location
	text       string
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// ParseWindow reads "[DAYS] HH:MM-HH:MM [ZONE]": DAYS is *, a day (Sun), a range (Mon-Fri) or a
// list of those (Sat,Sun or Mon-Wed,Fri), every day when left out; the end may be past midnight
// (22:00-02:00); ZONE is an IANA name (Europe/Berlin), UTC when left out. "" and "any" are any
// time.
func ParseWindow(s string) (Window, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "any") {
		return Window{}, nil
	}
	fields := strings.Fields(s)
	w := Window{loc: time.UTC, text: s}
	i := 0
	if !strings.Contains(fields[0], ":") {
		if err := w.parseDays(fields[0]); err != nil {
			return Window{}, fmt.Errorf("window %q: %w", s, err)
		}
		i++
	} else {
		w.days = [7]bool{true, true, true, true, true, true, true}
	}
	if i >= len(fields) {
		return Window{}, fmt.Errorf("window %q: no hours: want e.g. \"Sun 02:00-04:00 Europe/Berlin\"", s)
	}
	from, to, ok := strings.Cut(fields[i], "-")
	var err error
	if w.start, err = clock(from); err == nil && ok {
		w.end, err = clock(to)
	}
	if err != nil || !ok {
		return Window{}, fmt.Errorf("window %q: hours %q: want HH:MM-HH:MM", s, fields[i])
	}
	if w.end == w.start {
		return Window{}, fmt.Errorf("window %q: it opens and closes at the same time", s)
	}
	i++
	if i < len(fields) {
		if w.loc, err = time.LoadLocation(fields[i]); err != nil {
			return Window{}, fmt.Errorf("window %q: time zone: %w", s, err)
		}
		i++
	}
	if i < len(fields) {
		return Window{}, fmt.Errorf("window %q: unexpected %q", s, fields[i])
	}
	return w, nil
}

func (w *Window) parseDays(s string) error {
	if s == "*" {
		w.days = [7]bool{true, true, true, true, true, true, true}
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		first, ok := weekdays[strings.ToLower(from)]
		last, ok2 := weekdays[strings.ToLower(to)]
		if !ok || isRange && !ok2 {
			return fmt.Errorf("days %q: want *, Mon, Mon-Fri or Sat,Sun", s)
		}
		if !isRange {
			last = first
		}
		for d := first; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == last {
				break
			}
		}
	}
	return nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Always tells whether the window is any time.
func (w Window) Always() bool { return w.loc == nil }

func (w Window) String() string {
	if w.Always() {
		return "any time"
	}
	return w.text
}

// Next is the first moment at or after t when the window is open: t itself when it is open.
func (w Window) Next(t time.Time) time.Time {
	if w.Always() {
		return t
	}
	local := t.In(w.loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, w.loc)
	length := w.end - w.start
	if length < 0 {
		length += 24 * time.Hour
	}
	// Yesterday's opening may reach past midnight into today.
	for d := -1; d <= 7; d++ {
		day := midnight.AddDate(0, 0, d)
		if !w.days[day.Weekday()] {
			continue
		}
		// The wall-clock opening, whatever a DST change does to that day's length.
		open := time.Date(day.Year(), day.Month(), day.Day(), int(w.start/time.Hour), int(w.start%time.Hour/time.Minute), 0, 0, w.loc)
		switch {
		case !t.Before(open) && t.Before(open.Add(length)):
			return t
		case open.After(t):
			return open
		}
	}
	return t // unreachable: some day of every week is in the window
}
