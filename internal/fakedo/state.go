package fakedo

import (
	"fmt"
	"sort"
	"time"
)

// Droplet is a Droplet the fake holds.
type Droplet struct {
	ID             int // 0 means the next free ID
	Name           string
	Region         string // a region slug the API knows, e.g. "nyc3"; "" means nyc3
	Size           string // "" means s-1vcpu-1gb
	DiskGB         int    // 0 means 25
	Status         string // "" means active
	BackupsEnabled bool
	Policy         Policy // used when BackupsEnabled; zero means weekly SUN 0h
	VPCUUID        string
	Tags           []string
	Created        time.Time // zero means the fake's clock
}

// Policy is a Droplet's backup policy.
type Policy struct {
	Plan    string
	Weekday string
	Hour    int
	// RetentionDays is a retention chosen for a usage-based plan; 0 means
	// the plan's.
	RetentionDays int
}

// Image is a backup or snapshot of a Droplet.
type Image struct {
	ID        int    // 0 means the next free ID
	Name      string // "" means a generated name
	Type      string // "backup" or "snapshot"
	DropletID int
	SizeGB    float64
	Created   time.Time // zero means the fake's clock
}

// Action is an action the fake holds. It is in progress for PollsLeft more
// reads, then completed, or errored when Fail.
type Action struct {
	ID           int
	Type         string
	Status       string
	ResourceID   int
	ResourceType string
	Region       string
	StartedAt    time.Time
	CompletedAt  *time.Time
	PollsLeft    int // < 0: never completes
	Fail         bool
}

// SupportedPolicy is a plan the account offers.
type SupportedPolicy struct {
	Name                 string   `json:"name"`
	PossibleWindowStarts []int    `json:"possible_window_starts"`
	WindowLengthHours    int      `json:"window_length_hours"`
	RetentionPeriodDays  int      `json:"retention_period_days"`
	PossibleDays         []string `json:"possible_days"`
}

// BasicPlans are the plans whose retention is fixed: the two the API
// description enumerates. Every other plan is usage-based and takes a
// chosen retention_period_days.
var BasicPlans = []string{"daily", "weekly"}

// DefaultSupportedPolicies are the plans a new fake offers: the two basic
// plans as the API documents them, and the usage-based ones. Their names
// follow intra_daily_4h, the one public sources show (godo pull request
// 997, terraform-provider-digitalocean issue 1525); the 12- and 6-hour
// names are the same pattern.
func DefaultSupportedPolicies() []SupportedPolicy {
	starts := []int{0, 4, 8, 12, 16, 20}
	usage := func(name string) SupportedPolicy {
		return SupportedPolicy{Name: name, PossibleWindowStarts: starts, WindowLengthHours: 4, RetentionPeriodDays: 7, PossibleDays: []string{}}
	}
	return []SupportedPolicy{
		{Name: "weekly", PossibleWindowStarts: starts, WindowLengthHours: 4, RetentionPeriodDays: 28,
			PossibleDays: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
		{Name: "daily", PossibleWindowStarts: starts, WindowLengthHours: 4, RetentionPeriodDays: 7, PossibleDays: []string{}},
		usage("intra_daily_12h"), usage("intra_daily_6h"), usage("intra_daily_4h"),
	}
}

type state struct {
	clock     time.Time
	nextID    int
	droplets  map[int]*Droplet
	images    map[int]*Image
	actions   map[int]*Action
	supported []SupportedPolicy
	polls     int             // PollsLeft of new actions
	failTypes map[string]bool // action types that end errored
	// noActionLinks leaves links.actions of a Droplet create answer empty.
	noActionLinks bool
}

func newState() *state {
	return &state{
		clock:     Epoch,
		nextID:    1000,
		droplets:  map[int]*Droplet{},
		images:    map[int]*Image{},
		actions:   map[int]*Action{},
		supported: DefaultSupportedPolicies(),
		polls:     1,
		failTypes: map[string]bool{},
	}
}

// now returns the fake's clock and moves it a minute on.
func (st *state) now() time.Time {
	t := st.clock
	st.clock = st.clock.Add(time.Minute)
	return t
}

func (st *state) id(want int) int {
	if want == 0 {
		for st.droplets[st.nextID] != nil || st.images[st.nextID] != nil || st.actions[st.nextID] != nil {
			st.nextID++
		}
		want = st.nextID
		st.nextID++
	}
	return want
}

// AddDroplet adds a Droplet, filling in defaults, and returns it.
func (s *Server) AddDroplet(d Droplet) Droplet {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	d.ID = st.id(d.ID)
	if d.Region == "" {
		d.Region = "nyc3"
	}
	if d.Size == "" {
		d.Size = "s-1vcpu-1gb"
	}
	if d.DiskGB == 0 {
		d.DiskGB = 25
	}
	if d.Status == "" {
		d.Status = "active"
	}
	if d.Policy.Plan == "" {
		d.Policy = Policy{Plan: "weekly", Weekday: "SUN", Hour: 0}
	}
	if d.Created.IsZero() {
		d.Created = st.now()
	}
	st.droplets[d.ID] = &d
	return d
}

// AddImage adds a backup or snapshot of a Droplet and returns it.
func (s *Server) AddImage(img Image) Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.addImage(img)
}

func (st *state) addImage(img Image) Image {
	img.ID = st.id(img.ID)
	if img.Type == "" {
		img.Type = "backup"
	}
	if img.Created.IsZero() {
		img.Created = st.now()
	}
	if img.Name == "" {
		img.Name = fmt.Sprintf("%s-%d-%s", img.Type, img.DropletID, img.Created.Format("20060102-1504"))
	}
	if img.SizeGB == 0 {
		img.SizeGB = 2.34
	}
	st.images[img.ID] = &img
	return img
}

// AddBackups adds n backups of a Droplet, a day apart, oldest first, and
// returns their IDs.
func (s *Server) AddBackups(dropletID, n int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, n)
	start := s.st.now()
	for i := range n {
		img := s.st.addImage(Image{DropletID: dropletID, Type: "backup", Created: start.Add(time.Duration(i) * 24 * time.Hour)})
		ids = append(ids, img.ID)
	}
	return ids
}

// SetSupportedPolicies replaces the plans the account offers.
func (s *Server) SetSupportedPolicies(sp []SupportedPolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.supported = sp
}

// SetActionPolls sets how many reads new actions stay in progress for; a
// negative n makes them never complete.
func (s *Server) SetActionPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.polls = n
}

// OmitActionLinks makes Droplet creates answer with no action link, as
// the API may: a client then finds the create action among the Droplet's.
func (s *Server) OmitActionLinks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.noActionLinks = true
}

// FailActions makes new actions of these types end errored.
func (s *Server) FailActions(types ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range types {
		s.st.failTypes[t] = true
	}
}

// AddAction adds an action as it is (an ID of 0 means the next free one; a
// zero StartedAt means the fake's clock) and returns it.
func (s *Server) AddAction(a Action) Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.ID = s.st.id(a.ID)
	if a.Status == "" {
		a.Status = "in-progress"
	}
	if a.Region == "" {
		a.Region = "nyc3"
	}
	if a.StartedAt.IsZero() {
		a.StartedAt = s.st.now()
	}
	s.st.actions[a.ID] = &a
	return a
}

// Droplet returns a copy of a Droplet, and whether it exists.
func (s *Server) Droplet(id int) (Droplet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.droplets[id]
	if !ok {
		return Droplet{}, false
	}
	return *d, true
}

// Image returns a copy of an image, and whether it exists.
func (s *Server) Image(id int) (Image, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.st.images[id]
	if !ok {
		return Image{}, false
	}
	return *img, true
}

// Action returns a copy of an action, and whether it exists.
func (s *Server) Action(id int) (Action, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.st.actions[id]
	if !ok {
		return Action{}, false
	}
	return *a, true
}

// newAction starts an action on a resource.
func (st *state) newAction(typ string, resourceID int, resourceType, region string) *Action {
	a := &Action{
		ID: st.id(0), Type: typ, Status: "in-progress",
		ResourceID: resourceID, ResourceType: resourceType, Region: region,
		StartedAt: st.now(), PollsLeft: st.polls, Fail: st.failTypes[typ],
	}
	st.actions[a.ID] = a
	return a
}

// poll is one read of an action: it may move it to its end.
func (st *state) poll(a *Action) {
	if a.Status != "in-progress" || a.PollsLeft < 0 {
		return
	}
	if a.PollsLeft > 0 {
		a.PollsLeft--
		return
	}
	a.Status = "completed"
	if a.Fail {
		a.Status = "errored"
	}
	t := st.now()
	a.CompletedAt = &t
}

// imagesOf returns a Droplet's images of one type, oldest first.
func (st *state) imagesOf(dropletID int, typ string) []*Image {
	var out []*Image
	for _, img := range st.images {
		if img.DropletID == dropletID && img.Type == typ {
			out = append(out, img)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (st *state) supportedPlan(name string) *SupportedPolicy {
	for i := range st.supported {
		if st.supported[i].Name == name {
			return &st.supported[i]
		}
	}
	return nil
}
