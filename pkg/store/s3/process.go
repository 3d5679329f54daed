package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dropback/dropback/internal/safetext"
)

// processTimeout bounds a credential_process.
const processTimeout = 2 * time.Minute

// processOutput is what a credential_process prints: the AWS CLI's
// format, version 1.
type processOutput struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      *time.Time
}

// runCredentialProcess runs command as the AWS CLI runs a profile's
// credential_process: split as a POSIX shell splits words (quotes and
// backslashes), without a shell, with the standard input and environment
// of dropback; it reads the credentials from its standard output. Its
// standard error is kept for the error, as the AWS CLI keeps it.
func runCredentialProcess(ctx context.Context, command string) (credentials.Value, error) {
	args, err := splitCommand(command)
	if err != nil {
		return credentials.Value{}, err
	}
	if len(args) == 0 {
		return credentials.Value{}, errors.New("the command is empty")
	}
	ctx, cancel := context.WithTimeout(ctx, processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%v (%w)", err, ctx.Err())
		}
		msg := fmt.Sprintf("run %s: %v", safetext.Escape(safetext.Clip(args[0], 200)), err)
		if last := lastLine(stderr.String()); last != "" {
			msg += ": " + safetext.Escape(safetext.Clip(last, 300))
		}
		return credentials.Value{}, errors.New(msg)
	}
	var out processOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return credentials.Value{}, fmt.Errorf("%s printed no credentials in JSON: %v", safetext.Escape(safetext.Clip(args[0], 200)), err)
	}
	switch {
	case out.Version != 1:
		return credentials.Value{}, fmt.Errorf("%s printed Version %d; want 1", safetext.Escape(safetext.Clip(args[0], 200)), out.Version)
	case out.AccessKeyID == "" || out.SecretAccessKey == "":
		return credentials.Value{}, fmt.Errorf("%s printed no AccessKeyId or no SecretAccessKey", safetext.Escape(safetext.Clip(args[0], 200)))
	}
	v := credentials.Value{AccessKeyID: out.AccessKeyID, SecretAccessKey: out.SecretAccessKey,
		SessionToken: out.SessionToken, SignerType: credentials.SignatureV4}
	if out.Expiration != nil {
		v.Expiration = *out.Expiration
	}
	return v, nil
}

// lastLine is the last line of s that holds more than blanks.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// splitCommand splits a command line into words as a POSIX shell does,
// without expanding anything: blanks separate words, single quotes keep
// everything, double quotes keep all but \ before $ ` " \ or a newline,
// and a backslash outside quotes keeps the next character.
func splitCommand(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(rs) {
				i++
				if rs[i] != '\n' {
					word.WriteRune(rs[i])
				}
			}
		case c == '\'':
			inWord = true
			end := i + 1
			for end < len(rs) && rs[end] != '\'' {
				end++
			}
			if end == len(rs) {
				return nil, errors.New("the command has an unterminated ' quote")
			}
			word.WriteString(string(rs[i+1 : end]))
			i = end
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(rs); i++ {
				if rs[i] == '"' {
					closed = true
					break
				}
				if rs[i] == '\\' && i+1 < len(rs) && strings.ContainsRune("$`\"\\\n", rs[i+1]) {
					i++
					if rs[i] == '\n' {
						continue
					}
				}
				word.WriteRune(rs[i])
			}
			if !closed {
				return nil, errors.New(`the command has an unterminated " quote`)
			}
		default:
			inWord = true
			word.WriteRune(c)
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
