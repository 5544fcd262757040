package main

// The billing fixtures tell one story: a customer buys the Basic plan
// through Checkout with a 7-day trial; the subscription is created
// trialing, its $0 trial invoice is created, finalized and paid, the card
// becomes the default payment method, Stripe warns that the trial ends in
// three days and previews the renewal, the renewal's payment fails when
// the trial ends (the subscription goes past_due), and after the retries
// the subscription is canceled. The ids are shared, and each event's
// created follows the story, as do the objects' own timestamps.
const (
	storyCustomer      = "cus_TYk2mN8pQrStUv"
	storyPaymentMethod = "pm_1SbQkR2eZvKYlo2CcArD4242"
	storyProduct       = "prod_TYkBaSiCpLaN01"
	storyPrice         = "price_1SbQkR2eZvKYlo2CbAsIcM01"
	storySubscription  = "sub_1SbQkR2eZvKYlo2CsUbScR1p"
	storyItem          = "si_TYkBaSiCiTeM01"
	storySession       = "cs_test_a1SbQkR2eZvKYlo2CcHeCkOuT"
	storyInvoice       = "in_1SbQkR2eZvKYlo2CiNvOiCe1" // the trial's $0 invoice
	storyRenewal       = "in_1SbQkR2eZvKYlo2CiNvOiCe2" // the first paid month's, whose payment fails
	storyAmount        = 2000                          // $20.00 a month

	day = 24 * 60 * 60

	tCheckout   = 1764000000 // 2025-11-24 16:00 UTC: the session completes
	tSubscribed = tCheckout + 1
	tInvoiced   = tCheckout + 2 // the trial invoice: created, then finalized and paid a second apart
	tDefaultPM  = tCheckout + 5
	tTrialEnd   = tSubscribed + 7*day
	tWillEnd    = tTrialEnd - 3*day
	tUpcoming   = tWillEnd + 60
	tFailed     = tTrialEnd + 3600 // the renewal's first attempt
	tPastDue    = tFailed + 1
	tCanceled   = tTrialEnd + 14*day // after Smart Retries
)

// session makes stripe-mock's session the story's, completed.
func session(o map[string]any) {
	o["id"], o["mode"], o["status"], o["payment_status"] = storySession, "subscription", "complete", "no_payment_required"
	o["customer"], o["subscription"], o["invoice"], o["payment_intent"] = storyCustomer, storySubscription, storyInvoice, nil
	o["created"], o["expires_at"] = tCheckout-240, tCheckout-240+day
	o["amount_subtotal"], o["amount_total"], o["currency"] = 0, 0, "usd"
	o["url"] = nil // a completed session has none
}

// subscription makes stripe-mock's subscription the story's, with status
// as of time at.
func subscription(status string, at int64) func(o map[string]any) {
	return func(o map[string]any) {
		o["id"], o["customer"], o["status"], o["currency"] = storySubscription, storyCustomer, status, "usd"
		o["created"], o["start_date"], o["billing_cycle_anchor"] = tSubscribed, tSubscribed, tTrialEnd
		o["trial_start"], o["trial_end"] = tSubscribed, tTrialEnd
		o["latest_invoice"], o["default_payment_method"] = storyInvoice, nil
		if at >= tDefaultPM {
			o["default_payment_method"] = storyPaymentMethod
		}
		periodStart, periodEnd := int64(tSubscribed), int64(tTrialEnd)
		if at >= tTrialEnd {
			o["latest_invoice"] = storyRenewal
			periodStart, periodEnd = tTrialEnd, tTrialEnd+30*day
		}
		// What stripe-mock fills in and this subscription has not.
		for _, k := range []string{"cancel_at", "canceled_at", "ended_at", "pending_update", "pause_collection", "transfer_data",
			"next_pending_invoice_item_invoice", "pending_invoice_item_interval", "billing_cycle_anchor_config", "pending_setup_intent",
			"schedule", "application", "application_fee_percent", "default_source", "description", "discount", "on_behalf_of", "test_clock"} {
			o[k] = nil
		}
		o["cancel_at_period_end"], o["billing_schedules"], o["metadata"] = false, []any{}, map[string]any{}
		o["cancellation_details"] = map[string]any{"comment": nil, "feedback": nil, "reason": nil}
		if status == "canceled" {
			o["canceled_at"], o["ended_at"] = tCanceled, tCanceled
			o["cancellation_details"] = map[string]any{"comment": nil, "feedback": nil, "reason": "payment_failed"}
		}
		items := o["items"].(map[string]any)
		item := items["data"].([]any)[0].(map[string]any)
		item["id"], item["subscription"], item["created"] = storyItem, storySubscription, tSubscribed
		item["current_period_start"], item["current_period_end"] = periodStart, periodEnd
		item["metadata"] = map[string]any{}
		price := item["price"].(map[string]any)
		price["id"], price["product"], price["created"], price["nickname"] = storyPrice, storyProduct, tCheckout-90*day, "Basic monthly"
		price["unit_amount"], price["unit_amount_decimal"], price["transform_quantity"] = storyAmount, "2000", nil
		price["metadata"], price["lookup_key"] = map[string]any{}, "basic_monthly"
		items["url"] = "/v1/subscription_items?subscription=" + storySubscription
	}
}

// invoice makes stripe-mock's invoice the story's trial invoice (renewal
// false) or its renewal, in status as of time at.
func invoice(renewal bool, status string, at int64) func(o map[string]any) {
	return func(o map[string]any) {
		id, reason, created, amount := storyInvoice, "subscription_create", int64(tInvoiced), 0
		periodStart, periodEnd, line := int64(tSubscribed), int64(tSubscribed), "Trial period for Basic"
		if renewal {
			id, reason, created, amount = storyRenewal, "subscription_cycle", tTrialEnd, storyAmount
			periodStart, periodEnd, line = tSubscribed, tTrialEnd, "1 × Basic (at $20.00 / month)"
		}
		o["id"], o["customer"], o["status"], o["billing_reason"], o["currency"] = id, storyCustomer, status, reason, "usd"
		o["created"], o["period_start"], o["period_end"] = created, periodStart, periodEnd
		o["parent"] = map[string]any{
			"type":                 "subscription_details",
			"quote_details":        nil,
			"subscription_details": map[string]any{"subscription": storySubscription, "metadata": map[string]any{}},
		}
		for _, k := range []string{"from_invoice", "last_finalization_error", "shipping_cost", "due_date", "next_payment_attempt",
			"effective_at", "finalized_at", "webhooks_delivered_at", "latest_revision", "on_behalf_of", "application", "description", "footer",
			"test_clock", "default_payment_method", "default_source"} {
			o[k] = nil
		}
		o["amount_overpaid"], o["amount_shipping"], o["starting_balance"], o["ending_balance"] = 0, 0, 0, 0
		o["subtotal"], o["subtotal_excluding_tax"], o["total"], o["total_excluding_tax"] = amount, amount, amount, amount
		o["amount_due"], o["amount_paid"], o["amount_remaining"] = amount, 0, amount
		o["paid"], o["attempted"], o["attempt_count"], o["auto_advance"] = false, false, 0, true
		switch status {
		case "open", "paid":
			o["effective_at"] = created + 1
			o["status_transitions"] = map[string]any{"finalized_at": created + 1, "marked_uncollectible_at": nil, "paid_at": nil, "voided_at": nil}
		}
		if status == "paid" {
			o["paid"], o["attempted"], o["attempt_count"], o["auto_advance"] = true, true, 1, false
			o["amount_paid"], o["amount_remaining"] = amount, 0
			o["status_transitions"].(map[string]any)["paid_at"] = created + 2
		}
		if renewal && status == "open" && at >= tFailed {
			o["attempted"], o["attempt_count"], o["next_payment_attempt"] = true, 1, tFailed+3*day
		}
		lines := o["lines"].(map[string]any)
		l := lines["data"].([]any)[0].(map[string]any)
		lineID := "il_1SbQkR2eZvKYlo2CtRiAl001"
		if renewal {
			lineID = "il_1SbQkR2eZvKYlo2CrEnEw001"
		}
		l["id"], l["invoice"], l["amount"], l["subtotal"], l["description"] = lineID, id, amount, amount, line
		l["period"] = map[string]any{"start": periodStart, "end": periodEnd}
		l["parent"] = map[string]any{
			"type":                 "subscription_item_details",
			"invoice_item_details": nil,
			"subscription_item_details": map[string]any{
				"subscription": storySubscription, "subscription_item": storyItem, "invoice_item": nil, "proration": false,
				"proration_details": map[string]any{"credited_items": nil},
			},
		}
		l["pricing"] = map[string]any{"type": "price_details", "unit_amount_decimal": "2000",
			"price_details": map[string]any{"price": storyPrice, "product": storyProduct}}
		l["metadata"] = map[string]any{}
		lines["url"] = "/v1/invoices/" + id + "/lines"
	}
}

// upcoming is the renewal as invoice.upcoming previews it: no id yet.
func upcoming(o map[string]any) {
	invoice(true, "draft", tUpcoming)(o)
	o["created"] = tUpcoming
	delete(o, "id")
	lines := o["lines"].(map[string]any)
	lines["data"].([]any)[0].(map[string]any)["invoice"] = nil
	lines["url"] = "/v1/invoices/upcoming/lines?subscription=" + storySubscription
}

// customer makes stripe-mock's customer the story's.
func customer(o map[string]any) {
	o["id"], o["created"], o["email"], o["name"] = storyCustomer, tCheckout-1, "jenny.rosen@example.com", "Jenny Rosen"
}
