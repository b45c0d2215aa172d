// /api/v1/auth/oidc: single sign-on routes (public; docs/api.md, docs/security.md).
#include <boost/json/serialize.hpp>

#include "auth/oidc.hpp"
#include "http/router.hpp"

namespace dp::auth {
namespace {

using http::Request;
using http::Response;

std::string cookie_value(const Request& req, std::string_view name) {
  const auto header = req.header("cookie");
  if (!header) return {};
  std::string_view rest = *header;
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    std::string_view item = rest.substr(0, semi);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) {
      return std::string(item.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  return {};
}

std::string state_cookie(const OidcSettings& s, std::string_view value, int max_age) {
  std::string c = std::string(kStateCookie) + "=" + std::string(value) +
                  "; Path=/api/v1/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=" +
                  std::to_string(max_age);
  if (s.redirect_url.starts_with("https://")) c += "; Secure";
  return c;
}

bool wants_json(const Request& req) {
  const auto accept = req.header("accept");
  return accept && accept->find("application/json") != std::string_view::npos;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

void no_store(Response& r) {
  r.set_header("Cache-Control", "no-store");
  r.set_header("Pragma", "no-cache");
  r.set_header("Referrer-Policy", "no-referrer");
}

Error not_configured() {
  return Error{ErrorCode::kNotFound, "oidc_not_configured",
               "single sign-on is not configured (oidc_issuer)", nullptr};
}

}  // namespace

void register_oidc_routes(http::Router& router, OidcService* service) {
  router.add("GET", "/api/v1/auth/oidc", [service](Request& req) {
    boost::json::object data{{"enabled", service != nullptr}};
    if (service != nullptr) {
      data["displayName"] = service->settings().display_name;
      data["loginUrl"] = "/api/v1/auth/oidc/login";
    }
    return http::data_response(200, std::move(data), {}, req.request_id);
  });

  router.add("GET", "/api/v1/auth/oidc/login", [service](Request& req) {
    if (service == nullptr) return http::error_response(not_configured(), req.request_id);
    auto start = service->start_login();
    if (!start.ok()) {
      req.log.warn("oidc login could not start", {{"error", start.error().message}});
      return http::error_response(start.error(), req.request_id);
    }
    Response r;
    r.status = 302;
    r.content_type = "text/plain; charset=utf-8";
    r.set_header("Location", start->location);
    r.set_header("Set-Cookie", state_cookie(service->settings(), start->state, 600));
    no_store(r);
    r.body = "Redirecting to the identity provider.\n";
    return r;
  });

  router.add("GET", "/api/v1/auth/oidc/callback", [service](Request& req) {
    if (service == nullptr) return http::error_response(not_configured(), req.request_id);
    auto tokens = service->finish_login(req.query, cookie_value(req, kStateCookie), req);
    Response r;
    if (!tokens.ok()) {
      req.log.warn("oidc sign-in refused", {{"reason", tokens.error().reason},
                                            {"error", tokens.error().message}});
      r = http::error_response(tokens.error(), req.request_id);
    } else if (wants_json(req)) {
      r = http::data_response(200, *tokens, {}, req.request_id);
    } else {
      // A browser: hand the tokens to the dashboard in the URL fragment, which never
      // reaches a server, a log or a Referer header.
      const std::string target =
          "/#oidc=" + oidc::base64url_encode(boost::json::serialize(*tokens));
      r.status = 200;
      r.content_type = "text/html; charset=utf-8";
      r.set_header("Content-Security-Policy", "default-src 'none'");
      r.body = "<!doctype html><html><head><meta charset=\"utf-8\">"
               "<meta http-equiv=\"refresh\" content=\"0;url=" + html_escape(target) +
               "\"><title>Signed in</title></head><body><p>Signed in. <a href=\"" +
               html_escape(target) + "\">Continue to devplane</a>.</p></body></html>\n";
    }
    r.set_header("Set-Cookie", state_cookie(service->settings(), "", 0));
    no_store(r);
    return r;
  });
}

}  // namespace dp::auth
