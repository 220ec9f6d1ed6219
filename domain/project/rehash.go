package project

import (
	"time"

	"github.com/litehost/litehost/events"
)

// RehashPassword replaces the stored site password hash old with next, the same password hashed
// again with today's parameters (and sealed). It is a system action after a successful login, so
// it takes no owner or plan: it changes nothing the owner chose. Rules: only while the project
// has password access and still holds old; otherwise (the owner changed the password meanwhile,
// another instance rehashed first, the project is gone) it changes nothing.
func RehashPassword(s State, old, next string, now time.Time) []events.Event {
	if !s.Exists || s.Deleted || s.Settings.Access != AccessPassword || s.Settings.PasswordHash != old || next == "" || next == old {
		return nil
	}
	set := s.Settings
	set.PasswordHash = next
	return []events.Event{events.ProjectSettingsUpdated{ProjectID: s.ID, Settings: set, Changed: []string{"password"}, At: now}}
}
