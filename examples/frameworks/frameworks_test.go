package frameworks

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

const secret = "whsec_frameworks"

func TestMounted(t *testing.T) {
	for name, mount := range map[string]func(http.Handler) http.Handler{
		"ServeMux": ServeMux, "chi": Chi, "gin": Gin, "echo": Echo,
	} {
		t.Run(name, func(t *testing.T) {
			var got []string
			d := stripewebhook.NewDispatcher()
			stripewebhook.On(d, "invoice.paid", func(_ context.Context, _ *stripewebhook.Event, inv *stripe.Invoice) error {
				got = append(got, inv.ID)
				return nil
			})
			h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret))
			if err != nil {
				t.Fatal(err)
			}
			srv := mount(h)
			payload := webhooktest.Fixture(t, "invoice.paid")

			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", payload, secret))
			if rec.Code != http.StatusOK || len(got) != 1 || got[0] != "in_1SbQkR2eZvKYlo2CiNvOiCe1" {
				t.Fatalf("signed delivery: %d %q, callback saw %v", rec.Code, rec.Body, got)
			}
			rec = httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(payload)))
			if rec.Code != http.StatusBadRequest || len(got) != 1 {
				t.Fatalf("unsigned delivery: %d, callback ran %d times", rec.Code, len(got))
			}
		})
	}
}
