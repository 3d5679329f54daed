// Package safetext makes text that came from outside safe to print on a
// terminal: URLs lose their credentials, and control characters are escaped
// so that they can neither break a line nor drive the terminal.
//
// Every function is pure and safe for concurrent use.
package safetext

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Redacted stands for a secret removed from a URL.
const Redacted = "REDACTED"

// secretParams are the query parameters whose values are hidden: names that
// are, contain or end in one of these words, compared without case.
var secretParams = []string{
	"token", "key", "secret", "password", "passwd", "pwd", "auth", "credential",
	"signature", "sig", "session", "code", "apikey", "api_key",
}

// isSecretParam reports whether a query parameter's value is to be hidden.
func isSecretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range secretParams {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// URL returns raw with its user information and the values of token-like
// query parameters replaced by REDACTED, whatever its scheme. Text that does
// not parse as a URL with a host (a bare "user@host", say) is returned with
// everything before the last "@" of its authority hidden.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return redactUnparsed(raw)
	}
	changed := false
	if u.User != nil {
		u.User = url.User(Redacted)
		changed = true
	}
	if u.RawQuery != "" {
		q, qerr := url.ParseQuery(u.RawQuery)
		if qerr != nil {
			u.RawQuery = Redacted
			changed = true
		} else {
			for k, vs := range q {
				if isSecretParam(k) {
					for i := range vs {
						vs[i] = Redacted
					}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	if !changed {
		return raw
	}
	return u.String()
}

// redactUnparsed hides a userinfo-looking part of a string url.Parse
// refused.
func redactUnparsed(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		rest = Redacted + rest[at:]
	}
	if ok {
		return scheme + "://" + rest
	}
	return rest
}

// urlInText finds what looks like a URL in running text: a scheme, "://",
// and everything up to white space or a quote.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>` + "`" + `]+`)

// Redact returns s with every URL in it (scheme://...) passed through URL.
func Redact(s string) string {
	return urlInText.ReplaceAllStringFunc(s, URL)
}

// Escape returns s with control characters (C0, DEL, C1) and bidirectional
// formatting characters written as Go escapes (\x1b, \n, \u202e), so that
// the text stays on one line and cannot drive a terminal.
func Escape(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if unsafeRune(c) {
			q := strconv.QuoteRune(c)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func unsafeRune(c rune) bool {
	return unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c)
}

// Clip returns s cut to at most n runes, with "…" when it was cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
