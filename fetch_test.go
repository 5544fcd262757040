package stripewebhook

import (
	"context"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook/internal/eventtypes"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// Every related object of the thin types stripe-go knows can be fetched,
// as the stripe-go type the generated list names.
func TestRetrieversCoverThinTypes(t *testing.T) {
	api := webhooktest.NewStripeAPI(t)
	for typ, info := range eventtypes.ThinEvents {
		if info.Related == "" {
			continue
		}
		t.Run(typ, func(t *testing.T) {
			e, err := ParseEvent(webhooktest.Fixture(t, typ))
			require.NoError(t, err)
			require.NotNil(t, e.Related, "the fixture names its related object")
			r, ok := retrievers[e.Related.Type]
			require.True(t, ok, "no retriever for %q", e.Related.Type)
			assert.Equal(t, info.Related, r.goType)
			v, err := r.fetch(context.Background(), api.Client(), e.Related.ID, "")
			require.NoError(t, err)
			assert.Equal(t, info.Related, reflect.TypeOf(v).Elem().Name())
			assert.Equal(t, e.Related.ID, reflect.ValueOf(v).Elem().FieldByName("ID").String())
		})
	}
}
