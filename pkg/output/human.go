package output

import (
	"fmt"
	"time"
)

// None is what a table shows for an absent value.
const None = "—"

// Bytes prints n in IEC units: 512 B, 1.5 KiB, 20.0 GiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Time prints t as RFC 3339 in UTC, or None for the zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return None
	}
	return t.UTC().Format(time.RFC3339)
}

// TimePtr is Time for an optional time.
func TimePtr(t *time.Time) string {
	if t == nil {
		return None
	}
	return Time(*t)
}

// OrNone returns s, or None when s is empty.
func OrNone(s string) string {
	if s == "" {
		return None
	}
	return s
}
