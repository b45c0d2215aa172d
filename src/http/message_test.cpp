#include "http/message.hpp"

#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace dp::http {
namespace {

boost::json::object body_of(const Response& r) {
  return boost::json::parse(r.body).as_object();
}

struct CodeStatus {
  ErrorCode code;
  unsigned status;
};

class StatusForCodeTest : public ::testing::TestWithParam<CodeStatus> {};

// With a reason that pins nothing, the canonical code decides.
TEST_P(StatusForCodeTest, MapsCanonicalCode) {
  const auto& p = GetParam();
  EXPECT_EQ(status_for(Error{p.code, "some_reason", "m", nullptr}), p.status);
  EXPECT_EQ(status_for(Error{p.code, "", "m", nullptr}), p.status);
}

INSTANTIATE_TEST_SUITE_P(
    EveryErrorCode, StatusForCodeTest,
    ::testing::Values(CodeStatus{ErrorCode::kInvalidArgument, 400},
                      CodeStatus{ErrorCode::kNotFound, 404},
                      CodeStatus{ErrorCode::kAlreadyExists, 409},
                      CodeStatus{ErrorCode::kFailedPrecondition, 409},
                      CodeStatus{ErrorCode::kAborted, 409},
                      CodeStatus{ErrorCode::kUnavailable, 503},
                      CodeStatus{ErrorCode::kDeadlineExceeded, 504},
                      CodeStatus{ErrorCode::kPermissionDenied, 403},
                      CodeStatus{ErrorCode::kUnauthenticated, 401},
                      CodeStatus{ErrorCode::kResourceExhausted, 429},
                      CodeStatus{ErrorCode::kInternal, 500}),
    [](const ::testing::TestParamInfo<CodeStatus>& param_info) {
      return std::string(to_string(param_info.param.code));
    });

struct ReasonStatus {
  std::string reason;
  unsigned status;
};

class StatusForReasonTest : public ::testing::TestWithParam<ReasonStatus> {};

// These reasons pin their status whatever the canonical code says.
TEST_P(StatusForReasonTest, ReasonPinsStatus) {
  const auto& p = GetParam();
  for (ErrorCode code : {ErrorCode::kInvalidArgument, ErrorCode::kResourceExhausted,
                         ErrorCode::kFailedPrecondition, ErrorCode::kInternal}) {
    EXPECT_EQ(status_for(Error{code, p.reason, "m", nullptr}), p.status)
        << p.reason << " with " << to_string(code);
  }
}

INSTANTIATE_TEST_SUITE_P(
    PinnedReasons, StatusForReasonTest,
    ::testing::Values(ReasonStatus{"validation_failed", 422},
                      ReasonStatus{"payload_too_large", 413}, ReasonStatus{"rate_limited", 429},
                      ReasonStatus{"method_not_allowed", 405},
                      ReasonStatus{"headers_too_large", 431}),
    [](const ::testing::TestParamInfo<ReasonStatus>& param_info) {
      return param_info.param.reason;
    });

TEST(StatusForTest, FactoryErrorsMapAsTheDesignSays) {
  EXPECT_EQ(status_for(Error::validation("m", boost::json::array{})), 422u);
  EXPECT_EQ(status_for(Error::invalid_argument("invalid_json", "m")), 400u);
  EXPECT_EQ(status_for(Error::not_found("m")), 404u);
  EXPECT_EQ(status_for(Error::conflict("m")), 409u);
  EXPECT_EQ(status_for(Error::failed_precondition("version_conflict", "m")), 409u);
  EXPECT_EQ(status_for(Error::failed_precondition("invalid_transition", "m")), 409u);
  EXPECT_EQ(status_for(Error::unavailable("m")), 503u);
  EXPECT_EQ(status_for(Error::internal("m")), 500u);
}

TEST(ErrorResponseTest, EnvelopeCarriesReasonMessageDetailsAndRequestId) {
  Error e = Error::failed_precondition("version_conflict", "agent a is at version 3, not 2");
  e.details = boost::json::object{{"currentVersion", 3}};
  const Response r = error_response(e, "req-1");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.content_type, "application/json");
  const auto o = body_of(r);
  ASSERT_EQ(o.size(), 1u) << r.body;
  const auto& err = o.at("error").as_object();
  EXPECT_EQ(err.at("code").as_string(), "version_conflict");
  EXPECT_EQ(err.at("message").as_string(), "agent a is at version 3, not 2");
  EXPECT_EQ(err.at("details").at("currentVersion").as_int64(), 3);
  EXPECT_EQ(err.at("requestId").as_string(), "req-1");
}

TEST(ErrorResponseTest, NoDetailsKeyWhenAbsent) {
  const Response r = error_response(Error::not_found("agent x not found"), "r");
  EXPECT_EQ(r.status, 404u);
  const auto body = body_of(r);
  const auto& err = body.at("error").as_object();
  EXPECT_FALSE(err.contains("details")) << r.body;
  EXPECT_EQ(err.at("code").as_string(), "not_found");
}

TEST(ErrorResponseTest, EmptyReasonFallsBackToCodeName) {
  for (ErrorCode code :
       {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
        ErrorCode::kFailedPrecondition, ErrorCode::kAborted, ErrorCode::kUnavailable,
        ErrorCode::kDeadlineExceeded, ErrorCode::kPermissionDenied, ErrorCode::kUnauthenticated,
        ErrorCode::kResourceExhausted, ErrorCode::kInternal}) {
    const Response r = error_response(Error{code, "", "msg", nullptr}, "r");
    EXPECT_EQ(body_of(r).at("error").at("code").as_string(), to_string(code));
    EXPECT_EQ(r.status, status_for(Error{code, "", "msg", nullptr}));
  }
}

TEST(ErrorResponseTest, InternalMessageIsHidden) {
  const Response r = error_response(Error::internal("pq: relation agents does not exist"), "r");
  EXPECT_EQ(r.status, 500u);
  const auto body = body_of(r);
  const auto& err = body.at("error").as_object();
  EXPECT_EQ(err.at("code").as_string(), "internal");
  EXPECT_EQ(err.at("message").as_string(), "internal error");
  EXPECT_EQ(r.body.find("relation agents"), std::string::npos);
}

TEST(ErrorResponseTest, UnavailableMessageIsShown) {
  const Response r = error_response(Error::unavailable("database is restarting"), "r");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(body_of(r).at("error").at("message").as_string(), "database is restarting");
}

TEST(ErrorResponseTest, ValidationListsProblems) {
  boost::json::array problems{boost::json::object{{"field", "name"}, {"code", "required"}}};
  const Response r = error_response(Error::validation("agent: 1 problem", problems), "r");
  EXPECT_EQ(r.status, 422u);
  const auto body = body_of(r);
  const auto& err = body.at("error").as_object();
  EXPECT_EQ(err.at("code").as_string(), "validation_failed");
  EXPECT_EQ(err.at("details").as_array().size(), 1u);
}

TEST(DataResponseTest, EnvelopeWithMetaAndRequestId) {
  const Response r =
      data_response(201, boost::json::object{{"id", "a1"}}, {{"total", 5}}, "req-9");
  EXPECT_EQ(r.status, 201u);
  const auto o = body_of(r);
  EXPECT_EQ(o.size(), 2u);
  EXPECT_EQ(o.at("data").at("id").as_string(), "a1");
  EXPECT_EQ(o.at("meta").at("total").as_int64(), 5);
  EXPECT_EQ(o.at("meta").at("requestId").as_string(), "req-9");
}

TEST(DataResponseTest, NullAndArrayData) {
  auto o = body_of(data_response(200, nullptr, {}, "r"));
  EXPECT_TRUE(o.at("data").is_null());
  o = body_of(data_response(200, boost::json::array{1, 2}, {}, "r"));
  EXPECT_EQ(o.at("data").as_array().size(), 2u);
}

TEST(RequestTest, HeaderQueryAndParamLookups) {
  Request req;
  req.headers = {{"content-type", "application/json"}, {"x-request-id", "abc"}};
  req.query = {{"limit", "5"}, {"limit", "6"}, {"status", ""}};
  req.params = {{"id", "a1"}};
  EXPECT_EQ(req.header("content-type"), "application/json");
  EXPECT_EQ(req.header("Content-Type"), std::nullopt) << "names are stored lower-cased";
  EXPECT_EQ(req.header("accept"), std::nullopt);
  EXPECT_EQ(req.query_param("limit"), "5") << "first occurrence wins";
  EXPECT_EQ(req.query_param("status"), "");
  EXPECT_EQ(req.query_param("offset"), std::nullopt);
  EXPECT_EQ(req.param("id"), "a1");
  EXPECT_EQ(req.param("other"), "");
}

TEST(ParseJsonBodyTest, ParsesValuesWithSurroundingWhitespace) {
  auto r = parse_json_body("  {\"a\": [1, 2, {\"b\": null}]}\r\n\t ");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->at("a").as_array().size(), 3u);
  auto n = parse_json_body("42");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->as_int64(), 42);
}

void expect_invalid_json(const Result<boost::json::value>& r, std::size_t position,
                         std::size_t line, std::size_t column) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().reason, "invalid_json");
  EXPECT_EQ(status_for(r.error()), 400u);
  const auto& d = r.error().details.as_object();
  EXPECT_EQ(d.at("position").to_number<std::size_t>(), position);
  EXPECT_EQ(d.at("line").to_number<std::size_t>(), line);
  EXPECT_EQ(d.at("column").to_number<std::size_t>(), column);
  if (position > 0) {
    EXPECT_NE(r.error().message.find("line " + std::to_string(line) + ", column " +
                                     std::to_string(column)),
              std::string::npos)
        << r.error().message;
  }
}

TEST(ParseJsonBodyTest, EmptyBody) {
  expect_invalid_json(parse_json_body(""), 0, 1, 1);
}

TEST(ParseJsonBodyTest, WhitespaceOnlyBody) {
  expect_invalid_json(parse_json_body("  \n "), 4, 2, 2);
}

TEST(ParseJsonBodyTest, SyntaxErrorOnFirstLine) {
  // The bad byte is 'x' at offset 6.
  expect_invalid_json(parse_json_body("{\"a\": x}"), 6, 1, 7);
}

TEST(ParseJsonBodyTest, SyntaxErrorOnLaterLine) {
  // ']' is at offset 19, on line 3, column 8.
  expect_invalid_json(parse_json_body("{\n  \"a\": 1,\n  \"b\": ]\n}"), 19, 3, 8);
}

TEST(ParseJsonBodyTest, TruncatedDocumentPointsAtTheEnd) {
  expect_invalid_json(parse_json_body("{\"a\": 1"), 7, 1, 8);
  expect_invalid_json(parse_json_body("[1,\n2,"), 6, 2, 3);
}

TEST(ParseJsonBodyTest, TrailingGarbageIsRejected) {
  expect_invalid_json(parse_json_body("{} x"), 3, 1, 4);
  expect_invalid_json(parse_json_body("{}{}"), 2, 1, 3);
  expect_invalid_json(parse_json_body("1\n2"), 2, 2, 1);
}

TEST(ParseJsonBodyTest, ExcessiveNestingIsRejected) {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  auto r = parse_json_body(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "invalid_json");
  // 64 levels are fine.
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(parse_json_body(ok).ok());
}

TEST(ParseJsonBodyTest, InvalidUtf8IsRejected) {
  auto r = parse_json_body("{\"a\": \"\xff\xfe\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "invalid_json");
}

TEST(ParseJsonBodyTest, ErrorResponseOfMalformedBodyIs400WithPosition) {
  auto r = parse_json_body("{,}");
  ASSERT_FALSE(r.ok());
  const Response resp = error_response(r.error(), "req");
  EXPECT_EQ(resp.status, 400u);
  const auto body = body_of(resp);
  const auto& err = body.at("error").as_object();
  EXPECT_EQ(err.at("code").as_string(), "invalid_json");
  EXPECT_EQ(err.at("details").at("line").to_number<int>(), 1);
  EXPECT_EQ(err.at("details").at("column").to_number<int>(), 2);
}

}  // namespace
}  // namespace dp::http
