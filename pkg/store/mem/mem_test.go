package mem

import (
	"testing"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New(nil) })
}
