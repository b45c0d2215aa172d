// ExternalIdentity: a person a trusted identity provider (OIDC single sign-on) vouches for.
// The OIDC module fills it from a validated ID token and its claim-to-role mapping, then
// hands it to `AuthService::sign_in_external`, which finds or creates the matching SSO user
// (keyed by the (issuer, subject) pair, never by username) and returns the same token pair
// as a password login. Plain value; safe to copy between threads.
#pragma once

#include <string>

namespace dp::auth {

struct ExternalIdentity {
  std::string issuer;              // the provider's `iss`, exactly as in the ID token
  std::string subject;             // the provider's `sub`: stable id of the person there
  std::string preferred_username;  // `preferred_username` (or email); a hint for the local
                                   // username, made unique if taken
  std::string display_name;        // `name`; may be empty
  std::string email;               // may be empty
  std::string role;                // "admin" | "operator" | "viewer", from the claim mapping
};

}  // namespace dp::auth
