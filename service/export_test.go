package service

import (
	"context"

	"github.com/tandemhq/tandem"
)

// One pass of a cluster job, for tests that drive the jobs step by step.

func (s *Service) CheckNodes(ctx context.Context) error { return s.checkNodes(ctx) }

func (s *Service) StoreEvents(ctx context.Context, events []tandem.Event) error {
	return s.storeEvents(ctx, events)
}

func (s *Service) RelayPass(ctx context.Context) error { return s.relayPass(ctx) }
