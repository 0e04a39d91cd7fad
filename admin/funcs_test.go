package admin

import (
	"testing"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

func TestPermissionsTheViewerLacksCannotBeTicked(t *testing.T) {
	viewer := &service.Actor{Kind: tandem.ActorAdmin, Role: &tandem.Role{Permissions: []tandem.Permission{tandem.PermAuditRead, tandem.PermRolesManage}}}
	for _, c := range newPermChecks(&Form{Key: "create"}, nil, viewer).Checks {
		want := c.Value != string(tandem.PermAuditRead) && c.Value != string(tandem.PermRolesManage)
		if c.Disabled != want {
			t.Errorf("%s: disabled %v, want %v", c.Value, c.Disabled, want)
		}
	}
}
