package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// A sealed object is a JSON record stored with the BLAKE3 of its bytes, so
// that damage that leaves it valid JSON (a flipped digit, a changed letter in
// a name) is found as surely as damage to a pack:
//
//	{"blake3": "<64 hex digits>", "body": <the record, indented>}
//
// The config, manifests and host records are sealed; they are named by
// number or by a fixed name, not by their content, so nothing else would
// notice.
type sealed struct {
	Blake3 string          `json:"blake3"`
	Body   json.RawMessage `json:"body"`
}

// seal returns v as a sealed object.
func seal(v any) ([]byte, error) {
	body, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"blake3\": \"%s\",\n  \"body\": ", contentID(body))
	b.Write(body)
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// errNotSealed is a record without its seal. Every record of the format
// is sealed, so one without is refused like one whose seal does not match:
// removing the seal is no way around it.
var errNotSealed = errors.New("the record is not sealed")

// unseal decodes a sealed object into v after checking its sum. An object
// without a seal is refused with errNotSealed.
func unseal(data []byte, v any) error {
	if body, ok := sealedBody(data); ok && json.Unmarshal(body, v) == nil {
		return nil
	}
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s.Body == nil && s.Blake3 == "" {
		return errNotSealed
	}
	if s.Body == nil || contentID(s.Body).String() != s.Blake3 {
		return fmt.Errorf("%w: the record does not match its BLAKE3 sum", ErrCorrupt)
	}
	return json.Unmarshal(s.Body, v)
}

// sealProblem says for people why a record did not unseal.
func sealProblem(err error) string {
	switch {
	case errors.Is(err, errNotSealed):
		return "it is not sealed"
	case errors.Is(err, ErrCorrupt):
		return "it does not match its BLAKE3 sum"
	}
	return "it is not JSON"
}

// sealedBody returns the body of a record laid out exactly as seal writes
// it, whose sum matches: what decoding it as JSON would give, without
// scanning it twice more. Any other layout is left to unseal's decoder.
func sealedBody(data []byte) ([]byte, bool) {
	const head, tail = "{\n  \"blake3\": \"", "\n}\n"
	const mid = "\",\n  \"body\": "
	n := len(head) + 64 + len(mid)
	if len(data) < n+len(tail) || string(data[:len(head)]) != head ||
		string(data[len(head)+64:n]) != mid || string(data[len(data)-len(tail):]) != tail {
		return nil, false
	}
	body := data[n : len(data)-len(tail)]
	if contentID(body).String() != string(data[len(head):len(head)+64]) {
		return nil, false
	}
	return body, true
}
