package store

import "time"

// Every backend keeps times in whole microseconds (PostgreSQL's timestamptz
// precision; SQLite stores Unix microseconds).

// TimeOrNow is t, or the current time if t is zero: a change whose time the
// caller left unset happens now.
func TimeOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// StoredTime is t as a backend hands it back: whole microseconds, in UTC.
func StoredTime(t time.Time) time.Time {
	return t.Truncate(time.Microsecond).UTC()
}

// CeilMicro rounds a bound up to the stored precision: a stored time t is
// before the bound b exactly when t is before CeilMicro(b), so filters agree
// with the times the store hands back.
func CeilMicro(t time.Time) time.Time {
	c := t.Truncate(time.Microsecond)
	if !c.Equal(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}
