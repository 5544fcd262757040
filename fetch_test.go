package stripewebhook

import (
	"context"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

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
			assert.Equal(t, info.Related, relatedGoTypes[e.Related.Type], "the Go type of %q", e.Related.Type)
			retrieve := retrieverNamed(info.Related)
			require.NotNil(t, retrieve, "no Retrieve for %s", info.Related)
			v, err := retrieve(context.Background(), api.Client(), e.Related.ID, func(*stripe.Params) {})
			require.NoError(t, err)
			assert.Equal(t, info.Related, reflect.TypeOf(v).Elem().Name())
			assert.Equal(t, e.Related.ID, reflect.ValueOf(v).Elem().FieldByName("ID").String())
		})
	}
}
