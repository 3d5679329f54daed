package schedule

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr string
	}{
		{"daily", Policy{Plan: "daily", Hour: 0, RetentionDays: 7}, ""},
		{"weekly", Policy{Plan: "weekly", Weekday: "SAT", Hour: 20, RetentionDays: 28}, ""},
		{"intra_daily_4h", Policy{Plan: "intra_daily_4h", Hour: 8, RetentionDays: 365}, ""},
		{"retention 1", Policy{Plan: "intra_daily_6h", Hour: 16, RetentionDays: 1}, ""},
		{"hour 5", Policy{Plan: "daily", Hour: 5, RetentionDays: 7},
			"invalid hour 5: must be one of 0, 4, 8, 12, 16, 20"},
		{"hour 24", Policy{Plan: "daily", Hour: 24, RetentionDays: 7},
			"invalid hour 24: must be one of 0, 4, 8, 12, 16, 20"},
		{"hour -4", Policy{Plan: "daily", Hour: -4, RetentionDays: 7},
			"invalid hour -4: must be one of 0, 4, 8, 12, 16, 20"},
		{"FUNDAY", Policy{Plan: "weekly", Weekday: "FUNDAY", RetentionDays: 28},
			`invalid weekday "FUNDAY": must be one of SUN, MON, TUE, WED, THU, FRI, SAT`},
		{"lower-case weekday", Policy{Plan: "weekly", Weekday: "mon", RetentionDays: 28},
			`invalid weekday "mon": must be one of SUN, MON, TUE, WED, THU, FRI, SAT`},
		{"weekday on daily", Policy{Plan: "daily", Weekday: "MON", RetentionDays: 7},
			"a weekday applies only to the weekly plan"},
		{"weekday on intra_daily_6h", Policy{Plan: "intra_daily_6h", Weekday: "MON", RetentionDays: 7},
			"a weekday applies only to the weekly plan"},
		{"weekly without weekday", Policy{Plan: "weekly", RetentionDays: 28},
			"the weekly plan needs a weekday: one of SUN, MON, TUE, WED, THU, FRI, SAT"},
		{"retention 0", Policy{Plan: "daily", RetentionDays: 0},
			"invalid retention 0: must be 1 to 365 days"},
		{"retention 366", Policy{Plan: "daily", RetentionDays: 366},
			"invalid retention 366: must be 1 to 365 days"},
		{"unknown plan", Policy{Plan: "hourly", RetentionDays: 7},
			`invalid plan "hourly": must be one of daily, weekly, intra_daily_12h, intra_daily_6h, intra_daily_4h`},
		{"empty plan", Policy{RetentionDays: 7},
			`invalid plan "": must be one of daily, weekly, intra_daily_12h, intra_daily_6h, intra_daily_4h`},
		{"several problems", Policy{Plan: "daily", Hour: 5, Weekday: "MON", RetentionDays: 0},
			"invalid hour 5: must be one of 0, 4, 8, 12, 16, 20; " +
				"a weekday applies only to the weekly plan; " +
				"invalid retention 0: must be 1 to 365 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("Validate() = %q, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate() = %v, does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		plan string
		want Policy
	}{
		{"daily", Policy{Plan: "daily", RetentionDays: 7}},
		{"weekly", Policy{Plan: "weekly", Weekday: "SUN", RetentionDays: 28}},
		{"intra_daily_12h", Policy{Plan: "intra_daily_12h", RetentionDays: 7}},
		{"intra_daily_6h", Policy{Plan: "intra_daily_6h", RetentionDays: 7}},
		{"intra_daily_4h", Policy{Plan: "intra_daily_4h", RetentionDays: 7}},
	}
	for _, tt := range tests {
		got, err := Defaults(tt.plan)
		if err != nil || got != tt.want {
			t.Errorf("Defaults(%q) = %+v, %v; want %+v", tt.plan, got, err, tt.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("Defaults(%q) does not validate: %v", tt.plan, err)
		}
	}
	if _, err := Defaults("monthly"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Defaults(monthly) error = %v, want ErrInvalid", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		c       Change
		want    Policy
		wantErr string
	}{
		{"no flags: daily at 0", Change{}, Policy{Plan: "daily", RetentionDays: 7}, ""},
		{"weekly", Change{Plan: ptr("weekly")}, Policy{Plan: "weekly", Weekday: "SUN", RetentionDays: 28}, ""},
		{"weekly fri 16", Change{Plan: ptr("Weekly"), Weekday: ptr("fri"), Hour: ptr(16)},
			Policy{Plan: "weekly", Weekday: "FRI", Hour: 16, RetentionDays: 28}, ""},
		{"intra_daily_4h kept 2 days", Change{Plan: ptr("intra_daily_4h"), RetentionDays: ptr(2)},
			Policy{Plan: "intra_daily_4h", RetentionDays: 2}, ""},
		{"weekday on daily", Change{Weekday: ptr("MON")}, Policy{},
			"a weekday applies only to the weekly plan"},
		{"hour 5", Change{Hour: ptr(5)}, Policy{}, "invalid hour 5: must be one of 0, 4, 8, 12, 16, 20"},
		{"unknown plan", Change{Plan: ptr("hourly")}, Policy{},
			`invalid plan "hourly": must be one of daily, weekly, intra_daily_12h, intra_daily_6h, intra_daily_4h`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(tt.c)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrInvalid) {
					t.Fatalf("New() error = %v, want %q wrapping ErrInvalid", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("New() = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	daily := Policy{Plan: "daily", Hour: 8, RetentionDays: 7}
	weekly := Policy{Plan: "weekly", Weekday: "TUE", Hour: 4, RetentionDays: 28}
	custom := Policy{Plan: "daily", Hour: 8, RetentionDays: 30}
	tests := []struct {
		name    string
		p       Policy
		c       Change
		want    Policy
		wantErr string
	}{
		{"nothing", daily, Change{}, daily, ""},
		{"hour only", daily, Change{Hour: ptr(20)}, Policy{Plan: "daily", Hour: 20, RetentionDays: 7}, ""},
		{"retention only", weekly, Change{RetentionDays: ptr(56)},
			Policy{Plan: "weekly", Weekday: "TUE", Hour: 4, RetentionDays: 56}, ""},
		{"weekday only", weekly, Change{Weekday: ptr(" sat ")},
			Policy{Plan: "weekly", Weekday: "SAT", Hour: 4, RetentionDays: 28}, ""},
		{"daily to weekly: default weekday and retention", daily, Change{Plan: ptr("weekly")},
			Policy{Plan: "weekly", Weekday: "SUN", Hour: 8, RetentionDays: 28}, ""},
		{"daily to weekly with weekday", daily, Change{Plan: ptr("weekly"), Weekday: ptr("WED")},
			Policy{Plan: "weekly", Weekday: "WED", Hour: 8, RetentionDays: 28}, ""},
		{"weekly to daily drops the weekday", weekly, Change{Plan: ptr("daily")},
			Policy{Plan: "daily", Hour: 4, RetentionDays: 7}, ""},
		{"weekly to daily with a weekday", weekly, Change{Plan: ptr("daily"), Weekday: ptr("TUE")}, weekly,
			"a weekday applies only to the weekly plan"},
		{"weekly to daily with an empty weekday", weekly, Change{Plan: ptr("daily"), Weekday: ptr("")},
			Policy{Plan: "daily", Hour: 4, RetentionDays: 7}, ""},
		{"chosen retention survives a plan change", custom, Change{Plan: ptr("intra_daily_6h")},
			Policy{Plan: "intra_daily_6h", Hour: 8, RetentionDays: 30}, ""},
		{"same plan keeps retention", custom, Change{Plan: ptr("daily")}, custom, ""},
		{"weekday on daily", daily, Change{Weekday: ptr("MON")}, daily,
			"a weekday applies only to the weekly plan"},
		{"clearing the weekday of weekly", weekly, Change{Weekday: ptr("")}, weekly,
			"the weekly plan needs a weekday: one of SUN, MON, TUE, WED, THU, FRI, SAT"},
		{"FUNDAY", weekly, Change{Weekday: ptr("FUNDAY")}, weekly,
			`invalid weekday "FUNDAY": must be one of SUN, MON, TUE, WED, THU, FRI, SAT`},
		{"retention 0", daily, Change{RetentionDays: ptr(0)}, daily,
			"invalid retention 0: must be 1 to 365 days"},
		{"hour 5", weekly, Change{Hour: ptr(5)}, weekly,
			"invalid hour 5: must be one of 0, 4, 8, 12, 16, 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.Apply(tt.c)
			if got != tt.want {
				t.Errorf("Apply() = %+v, want %+v", got, tt.want)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Apply() error = %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("Apply() error = %v, want %q", err, tt.wantErr)
			case tt.wantErr != "" && !errors.Is(err, ErrInvalid):
				t.Errorf("Apply() error = %v, does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestChangeEmpty(t *testing.T) {
	if !(Change{}).Empty() {
		t.Error("Change{}.Empty() = false")
	}
	if (Change{Hour: ptr(0)}).Empty() {
		t.Error("Change{Hour: 0}.Empty() = true")
	}
}

func TestSupported(t *testing.T) {
	got, err := json.Marshal(Supported())
	if err != nil {
		t.Fatal(err)
	}
	starts := `"possible_window_starts":[0,4,8,12,16,20],"window_length_hours":4`
	days := `"possible_days":["SUN","MON","TUE","WED","THU","FRI","SAT"]`
	want := `[` +
		`{"name":"daily",` + starts + `,"retention_period_days":7,"possible_days":[]},` +
		`{"name":"weekly",` + starts + `,"retention_period_days":28,` + days + `},` +
		`{"name":"intra_daily_12h",` + starts + `,"retention_period_days":7,"possible_days":[]},` +
		`{"name":"intra_daily_6h",` + starts + `,"retention_period_days":7,"possible_days":[]},` +
		`{"name":"intra_daily_4h",` + starts + `,"retention_period_days":7,"possible_days":[]}` +
		`]`
	if string(got) != want {
		t.Errorf("Supported() JSON =\n%s\nwant\n%s", got, want)
	}
	// The table is a copy: changing it changes nothing.
	s := Supported()
	s[0].PossibleWindowStarts[0] = 99
	s[1].PossibleDays[0] = "XXX"
	if !reflect.DeepEqual(Supported()[0].PossibleWindowStarts, WindowStarts()) || Weekdays()[0] != "SUN" {
		t.Error("Supported() shares its slices")
	}
}

func TestPolicyDurations(t *testing.T) {
	tests := []struct {
		p         Policy
		period    time.Duration
		length    time.Duration
		retention time.Duration
	}{
		{Policy{Plan: "daily", RetentionDays: 7}, 24 * time.Hour, 4 * time.Hour, 7 * 24 * time.Hour},
		{Policy{Plan: "weekly", Weekday: "SUN", RetentionDays: 28}, 7 * 24 * time.Hour, 4 * time.Hour, 28 * 24 * time.Hour},
		{Policy{Plan: "intra_daily_12h", RetentionDays: 3}, 12 * time.Hour, 4 * time.Hour, 3 * 24 * time.Hour},
		{Policy{Plan: "intra_daily_6h", RetentionDays: 7}, 6 * time.Hour, 4 * time.Hour, 7 * 24 * time.Hour},
		{Policy{Plan: "intra_daily_4h", RetentionDays: 7}, 4 * time.Hour, 4 * time.Hour, 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := tt.p.Period(); got != tt.period {
			t.Errorf("%v: Period() = %v, want %v", tt.p, got, tt.period)
		}
		if got := tt.p.WindowLength(); got != tt.length {
			t.Errorf("%v: WindowLength() = %v, want %v", tt.p, got, tt.length)
		}
		if got := tt.p.Retention(); got != tt.retention {
			t.Errorf("%v: Retention() = %v, want %v", tt.p, got, tt.retention)
		}
	}
	if got, want := (Policy{Plan: "weekly", Weekday: "SUN", Hour: 4, RetentionDays: 28}).String(), "weekly SUN 04:00 UTC, kept 28 days"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestEarlierPlanNamesAreDigitalOceans(t *testing.T) {
	for old, want := range map[string]string{"every-12h": "intra_daily_12h", "every-6h": "intra_daily_6h", "EVERY-4H": "intra_daily_4h"} {
		p, err := New(Change{Plan: ptr(old)})
		if err != nil || p.Plan != want {
			t.Errorf("New(%s) = %v, %v; want plan %s", old, p, err, want)
		}
	}
	stored := Policy{Plan: "every-6h", Hour: 4, RetentionDays: 30}
	if err := stored.Validate(); err != nil {
		t.Fatalf("a policy stored under an earlier name: %v", err)
	}
	if stored.Period() != 6*time.Hour {
		t.Fatalf("period = %s", stored.Period())
	}
	q, err := stored.Apply(Change{Hour: ptr(8)})
	if err != nil || q.Plan != "intra_daily_6h" || q.RetentionDays != 30 {
		t.Fatalf("Apply = %v, %v", q, err)
	}
}
