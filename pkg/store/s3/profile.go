package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"gopkg.in/ini.v1"
)

// errNoProfile means that the shared AWS files hold no credentials for the
// default profile, or that a profile holds none: the next source of the
// chain is asked.
var errNoProfile = errors.New("no profile holds credentials")

// profileCreds is a credentials.Provider for a profile of the shared AWS
// files, ~/.aws/config and ~/.aws/credentials (AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE), as the AWS CLI reads them: its static keys,
// else its SSO role (by minio-go), else its credential_process, which runs
// here (minio-go's refuses a command without arguments). It is not safe
// for concurrent use; credentials.Credentials serialises its calls.
type profileCreds struct {
	credentials.Expiry
	name   string // AWS_PROFILE; "" is default
	getenv func(string) string

	source  string // where the credentials came from, for messages
	cached  *credentials.Value
	expires bool
	sso     *credentials.FileAWSCredentials
}

// Retrieve implements credentials.Provider.
func (p *profileCreds) Retrieve() (credentials.Value, error) { return p.RetrieveWithCredContext(nil) }

// IsExpired implements credentials.Provider.
func (p *profileCreds) IsExpired() bool {
	switch {
	case p.cached == nil:
		return true
	case p.sso != nil:
		return p.sso.IsExpired()
	case p.expires:
		return p.Expiry.IsExpired()
	}
	return false
}

// RetrieveWithCredContext implements credentials.Provider. It returns an
// error wrapping errNoProfile when there is no profile to use and
// AWS_PROFILE is not set, or when the profile holds no credentials.
func (p *profileCreds) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	if p.cached != nil && !p.IsExpired() {
		return *p.cached, nil
	}
	v, err := p.retrieve(cc)
	if err != nil {
		return credentials.Value{}, err
	}
	p.cached = &v
	return v, nil
}

func (p *profileCreds) retrieve(cc *credentials.CredContext) (credentials.Value, error) {
	name := p.name
	if name == "" {
		name = "default"
	}
	keys, files, err := loadProfile(p.getenv, name)
	switch {
	case err != nil:
		return credentials.Value{}, err
	case keys == nil && p.name != "":
		return credentials.Value{}, fmt.Errorf("AWS_PROFILE=%s: there is no profile %q in %s", p.name, name, files)
	case keys == nil:
		return credentials.Value{}, errNoProfile
	}
	id, secret := keys["aws_access_key_id"], keys["aws_secret_access_key"]
	switch {
	case id != "" && secret != "":
		p.source = fmt.Sprintf("the keys of profile %q", name)
		return credentials.Value{AccessKeyID: id, SecretAccessKey: secret, SessionToken: keys["aws_session_token"],
			SignerType: credentials.SignatureV4}, nil
	case id != "":
		return credentials.Value{}, fmt.Errorf("profile %q in %s has aws_access_key_id but no aws_secret_access_key", name, files)
	case secret != "":
		return credentials.Value{}, fmt.Errorf("profile %q in %s has aws_secret_access_key but no aws_access_key_id", name, files)
	case keys["sso_role_name"] != "" || keys["sso_session"] != "" || keys["sso_start_url"] != "":
		p.source = fmt.Sprintf("the SSO role of profile %q", name)
		p.sso = &credentials.FileAWSCredentials{Profile: name}
		v, err := p.sso.RetrieveWithCredContext(cc)
		if err != nil {
			return credentials.Value{}, fmt.Errorf("profile %q: SSO: %v", name, err)
		}
		return v, nil
	case keys["credential_process"] != "":
		p.source = fmt.Sprintf("the credential_process of profile %q", name)
		ctx := context.Background()
		if cc != nil && cc.Context != nil {
			ctx = cc.Context
		}
		v, err := runCredentialProcess(ctx, keys["credential_process"])
		if err != nil {
			return credentials.Value{}, fmt.Errorf("profile %q: credential_process: %v", name, err)
		}
		p.expires = !v.Expiration.IsZero()
		if p.expires {
			p.SetExpiration(v.Expiration, credentials.DefaultExpiryWindow)
		}
		return v, nil
	}
	return credentials.Value{}, fmt.Errorf("%w: profile %q in %s has no aws_access_key_id, credential_process or sso_role_name",
		errNoProfile, name, files)
}

// loadProfile returns the settings of profile name in the shared AWS files,
// nil if neither has it, and the two files' names for messages. As with
// the AWS CLI, a profile is [profile name] (or [default]) in the config
// file and [name] in the credentials file, whose settings win; a missing
// file is no error.
func loadProfile(getenv func(string) string, name string) (map[string]string, string, error) {
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	path := func(env, base string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return filepath.Join(home, ".aws", base)
	}
	configFile, credsFile := path("AWS_CONFIG_FILE", "config"), path("AWS_SHARED_CREDENTIALS_FILE", "credentials")
	files := configFile + " or " + credsFile
	var keys map[string]string
	config, err := loadINI(configFile)
	if err != nil {
		return nil, files, err
	}
	sections := []string{"profile " + name}
	if name == "default" {
		sections = []string{"default", "profile default"}
	}
	for _, sec := range sections {
		if s, err := config.GetSection(sec); err == nil {
			keys = s.KeysHash()
		}
	}
	creds, err := loadINI(credsFile)
	if err != nil {
		return nil, files, err
	}
	if s, err := creds.GetSection(name); err == nil {
		pair := s.HasKey("aws_access_key_id") && s.HasKey("aws_secret_access_key")
		if keys == nil {
			keys = map[string]string{}
		}
		for k, v := range s.KeysHash() {
			if strings.HasPrefix(k, "aws_") && !pair {
				// Half a key pair does not clobber the config file's.
				if _, set := keys[k]; set {
					continue
				}
			}
			keys[k] = v
		}
	}
	return keys, files, nil
}

// loadINI reads an INI file; a missing one is empty.
func loadINI(path string) (*ini.File, error) {
	f, err := ini.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ini.Empty(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %v", path, err)
	}
	return f, nil
}
