package eventtypes

import (
	"sort"
	"testing"
)

func TestKnown(t *testing.T) {
	if !sort.StringsAreSorted(Known[:]) || len(Known) < 200 {
		t.Fatalf("Known: %d types, sorted %v", len(Known), sort.StringsAreSorted(Known[:]))
	}
	for _, typ := range []string{"invoice.paid", "payment_intent.succeeded", "account.application.deauthorized"} {
		if !IsKnown(typ) {
			t.Errorf("%s not known", typ)
		}
	}
	for _, typ := range []string{"invoice.payed", "", "invoice.", "zzz"} {
		if IsKnown(typ) {
			t.Errorf("%q known", typ)
		}
	}
	subs := WithPrefix("customer.subscription.")
	if len(subs) < 5 || subs[0] != "customer.subscription.created" {
		t.Fatalf("WithPrefix: %v", subs)
	}
	if got := WithPrefix("nothing."); len(got) != 0 {
		t.Fatalf("WithPrefix(nothing.) = %v", got)
	}
}

func TestThin(t *testing.T) {
	if !sort.StringsAreSorted(Thin[:]) || len(Thin) < 3 || len(ThinEvents) != len(Thin) {
		t.Fatalf("Thin: %v", Thin)
	}
	for _, typ := range []string{"v1.billing.meter.error_report_triggered", "v2.core.event_destination.ping"} {
		if !IsKnown(typ) {
			t.Errorf("%s not known", typ)
		}
	}
	if got := WithPrefix("v1.billing.meter."); len(got) != 2 {
		t.Fatalf("WithPrefix(v1.billing.meter.) = %v", got)
	}
	if ThinEvents["v1.billing.meter.error_report_triggered"].Related != "BillingMeter" {
		t.Fatalf("related object: %+v", ThinEvents)
	}
}
