// Package schedule holds dropback's backup plans, windows and retention rules
// as pure functions over an injected clock: nothing here reads the time of
// day, touches a disk or keeps state. Callers pass `now`.
//
// The words and defaults are DigitalOcean Droplet Backups': a daily plan kept
// 7 days, a weekly plan kept 28 days, 4-hour windows starting at 0, 4, 8, 12,
// 16 or 20 h UTC, a weekday SUN..SAT for the weekly plan, and DigitalOcean's
// usage-based intra_daily_12h, intra_daily_6h and intra_daily_4h plans (once
// named every-12h, every-6h and every-4h, names still accepted). Every plan
// takes a retention of 1 to 365 days.
//
// All times are UTC; there is no daylight saving time. docs/schedule.md
// describes the rules for users.
package schedule
