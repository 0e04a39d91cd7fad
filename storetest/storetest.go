// Package storetest owns the conformance suite of tandem.Store: the one set
// of tests every implementation (sqlite/, postgres/) passes, so the service
// layer can rely on the same behaviour from both. It knows nothing of any
// database; tests that need raw SQL live beside each implementation.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	tandem "github.com/tandemhq/tandem"
)

// Run runs the suite. open must return a fresh, migrated store of its own
// (subtests run in parallel) and close it when t ends.
func Run(t *testing.T, open func(t *testing.T) tandem.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s tandem.Store)
	}{
		{"UpdateCommitsAndViewSeesIt", testUpdateCommitsAndViewSeesIt},
		{"UpdateRollsBackWhenFnFails", testUpdateRollsBackWhenFnFails},
		{"ViewRefusesWrites", testViewRefusesWrites},

		{"BuiltinRolesAreCreatedByMigration", testBuiltinRoles},
		{"RoleRoundTrips", testRoleRoundTrips},
		{"UpdateRoleWritesNameDescriptionPermissionsAndUpdatedAt", testUpdateRole},
		{"TakenRoleNameIsConflict", testTakenRoleNameIsConflict},
		{"MissingRoleIsNotFound", testMissingRoleIsNotFound},
		{"DeleteRoleRemovesIt", testDeleteRoleRemovesIt},
		{"DeleteRoleInUseIsConflict", testDeleteRoleInUseIsConflict},

		{"AdminRoundTrips", testAdminRoundTrips},
		{"ZeroTimesRoundTripAsZero", testZeroTimesRoundTripAsZero},
		{"UpdateAdminWritesEveryFieldButIDAndCreatedAt", testUpdateAdmin},
		{"TakenAdminNameIsConflict", testTakenAdminNameIsConflict},
		{"AdminWithMissingRoleIsConflict", testAdminWithMissingRoleIsConflict},
		{"MissingAdminIsNotFound", testMissingAdminIsNotFound},
		{"RecoveryCodesWorkOnce", testRecoveryCodesWorkOnce},
		{"DevicesAreRememberedPerAdmin", testDevices},

		{"AdminSessionRoundTrips", testAdminSessionRoundTrips},
		{"UpdateAdminSessionWritesLastSeenMFAAndReauth", testUpdateAdminSession},
		{"AdminSessionErrors", testAdminSessionErrors},
		{"DeleteAdminSessionsKeepsTheNamedOne", testDeleteAdminSessions},
		{"DeleteExpiredAdminSessionsRemovesExpiredAndIdle", testDeleteExpiredAdminSessions},

		{"APIKeyRoundTripsByIDAndHash", testAPIKeyRoundTrips},
		{"UpdateAPIKeyWritesLastUsedAndRevoked", testUpdateAPIKey},
		{"APIKeyErrors", testAPIKeyErrors},

		{"RateLimitCountsPerWindow", testRateLimitCountsPerWindow},
		{"ResetRateLimitForgetsEveryWindow", testResetRateLimit},
		{"DeleteOldRateLimitsRemovesEndedWindows", testDeleteOldRateLimits},

		{"EmptyAuditChainHasZeroHead", testEmptyAuditChain},
		{"AppendAuditMovesTheHead", testAppendAuditMovesTheHead},
		{"AuditRangeReturnsOldestFirst", testAuditRange},
		{"AuditRecordsFilters", testAuditRecordsFilters},
		{"AuditRecordsPagesWithBeforeSeq", testAuditRecordsPages},
		{"AuditRecordsLimitDefaultsTo100AndCapsAt1000", testAuditRecordsLimit},
		{"AuditCheckpointsRoundTrip", testAuditCheckpoints},
		{"ConcurrentAppendsFormAGapFreeChain", testConcurrentAppends},

		{"PlayerRoundTripsWithEmptyStringsAndNoPropertiesAsNil", testPlayerRoundTrips},
		{"GuestsWithoutEmailCoexistAndEmptyEmailFindsNone", testGuestsWithoutEmailCoexist},
		{"PlayerByEmailMatchesTheStoredEmailExactly", testPlayerByEmailMatchesExactly},
		{"UpdatePlayerWritesEveryFieldButIDAndCreatedAtAndDeletionFreesTheEmail", testUpdatePlayer},
		{"TakenPlayerEmailOrIDIsConflict", testTakenPlayerEmailOrIDIsConflict},
		{"MissingPlayerIsNotFound", testMissingPlayerIsNotFound},
		{"SearchPlayersMatchesWholeIDEmailOrDeviceAndNamePartsLiterally", testSearchPlayers},
		{"SearchPlayersNewestFirstLimitDefaults50AndCapsAt200", testSearchPlayersLimit},
		{"CountPlayersCountsDeletedAccountsToo", testCountPlayersCountsTombstones},
		{"PlayerDevicesRoundTripOldestFirstTouchAndDelete", testPlayerDevices},
		{"PlayerDeviceErrors", testPlayerDeviceErrors},
		{"PlayerSessionRoundTripsByAccessAndRefreshNewestFirst", testPlayerSessionRoundTrips},
		{"RotatePlayerSessionWritesTokensAndRemembersTheUsedOne", testRotatePlayerSession},
		{"DeleteOldUsedRefreshTokensKeepsRecentOnes", testDeleteOldUsedRefreshTokens},
		{"PlayerSessionErrors", testPlayerSessionErrors},
		{"DeletePlayerSessionForgetsItsUsedRefreshTokens", testDeletePlayerSessionForgetsUsedTokens},
		{"DeletePlayerAndDeviceSessionsReturnCountsAndNilDeviceMatchesNone", testDeletePlayerAndDeviceSessionsReturnCounts},
		{"DeleteExpiredPlayerSessionsRemovesRefreshExpiredBeforeNow", testDeleteExpiredPlayerSessions},
		{"LoginRecordsNewestFirstLimitDefaults20AndOldOnesAreDeleted", testLoginRecords},
		{"BanRoundTripsNewestFirstAndUpdateBanWritesLifted", testBanRoundTrips},
		{"BanErrors", testBanErrors},
		{"ActiveBansStartAtStartsAtEndAtEndsAtAndMatchDevicesByHash", testActiveBansAtBoundaries},
		{"PlayerNotesNewestFirstAndDeleted", testPlayerNotes},
		{"ListsOfAnUnknownPlayerAreEmpty", testPlayerListsOfUnknownPlayerAreEmpty},

		{"SigningKeysRoundTripNewestFirst", testSigningKeysRoundTripNewestFirst},
		{"RetireSigningKeyWritesRetiredAndExpires", testRetireSigningKey},
		{"SigningKeyErrors", testSigningKeyErrors},
		{"DeleteExpiredSigningKeysKeepsSigningAndUnexpiredKeys", testDeleteExpiredSigningKeys},
		{"LockSigningKeysSerializesRotation", testLockSigningKeysSerializesRotation},
	}
	tests = append(tests, clusterTests()...)
	tests = append(tests, matchmakingTests()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, open(t))
		})
	}
}

// at returns the suite's clock moved by d. The clock is not in UTC and has
// nanoseconds, so every round trip also proves the store returns UTC at
// microsecond precision.
func at(d time.Duration) time.Time {
	return time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 2*60*60)).Add(d)
}

// norm is what a store returns for t.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// exactTime compares times by instant and location, since time.Time's Equal
// method (which cmp would use) ignores the location.
func exactTime() cmp.Option {
	return cmp.Comparer(func(a, b time.Time) bool {
		return a.Equal(b) && a.Location() == b.Location()
	})
}

func update(t *testing.T, s tandem.Store, fn func(tx tandem.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s tandem.Store, fn func(tx tandem.Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// wantCode runs fn in its own transaction and checks it fails with code.
// Each expected failure gets a transaction of its own because PostgreSQL
// aborts the rest of a transaction after a failed statement.
func wantCode(t *testing.T, s tandem.Store, code tandem.ErrorCode, what string, fn func(ctx context.Context, tx tandem.Tx) error) {
	t.Helper()
	err := s.Update(t.Context(), func(tx tandem.Tx) error { return fn(t.Context(), tx) })
	if got := tandem.ErrorCodeOf(err); got != code {
		t.Errorf("%s: error %v (code %v), want code %v", what, err, got, code)
	}
}

func testUpdateCommitsAndViewSeesIt(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	r := &tandem.Role{Name: "committed", CreatedAt: at(0), UpdatedAt: at(0)}
	update(t, s, func(tx tandem.Tx) error { return tx.CreateRole(ctx, r) })
	view(t, s, func(tx tandem.Tx) error {
		_, err := tx.Role(ctx, r.ID)
		return err
	})
}

func testUpdateRollsBackWhenFnFails(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx tandem.Tx) error {
		if err := tx.CreateRole(ctx, &tandem.Role{Name: "rolled-back"}); err != nil {
			return err
		}
		if _, err := tx.HitRateLimit(ctx, "rolled-back", time.Minute, at(0)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}

	// A *tandem.Error from fn keeps its code.
	err = s.Update(ctx, func(tx tandem.Tx) error { return tandem.Errorf(tandem.EInvalid, "no") })
	if got := tandem.ErrorCodeOf(err); got != tandem.EInvalid {
		t.Errorf("Update returned code %v, want %v", got, tandem.EInvalid)
	}

	view(t, s, func(tx tandem.Tx) error {
		if _, err := tx.RoleByName(ctx, "rolled-back"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("role of the failed Update: err %v, want not found", err)
		}
		n, err := tx.RateLimitCount(ctx, "rolled-back", time.Minute, at(0))
		if err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("rate limit count of the failed Update = %d, want 0", n)
		}
		return nil
	})
}

func testViewRefusesWrites(t *testing.T, s tandem.Store) {
	ctx := t.Context()
	err := s.View(ctx, func(tx tandem.Tx) error {
		return tx.CreateRole(ctx, &tandem.Role{Name: "written-in-view"})
	})
	if err == nil {
		t.Fatal("CreateRole in View succeeded")
	}
	view(t, s, func(tx tandem.Tx) error {
		if _, err := tx.RoleByName(ctx, "written-in-view"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
			t.Errorf("role written in View: err %v, want not found", err)
		}
		return nil
	})
}
