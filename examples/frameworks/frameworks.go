// Package frameworks mounts the stripewebhook handler in the routers people
// use. The handler reads the body itself, once, so it is mounted as a plain
// http.Handler, ahead of anything that would read or rewrite the body, and
// outside CSRF protection: Stripe sends no token, the signature is the
// authentication.
package frameworks

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
)

// ServeMux mounts h with Go 1.22+ method patterns.
func ServeMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /webhook", h)
	return mux
}

// Chi mounts h on a chi router.
func Chi(h http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Method(http.MethodPost, "/webhook", h)
	return r
}

// Gin mounts h on a gin engine.
func Gin(h http.Handler) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/webhook", gin.WrapH(h))
	return r
}

// Echo mounts h on an echo instance.
func Echo(h http.Handler) http.Handler {
	e := echo.New()
	e.POST("/webhook", echo.WrapHandler(h))
	return e
}
