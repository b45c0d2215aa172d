// Checks tool arguments against a tool's inputSchema before they are sent.
//
// A deliberately small subset of JSON Schema (2020-12 / draft-07 keywords), enough for the
// schemas MCP servers publish: type (one or a list), properties, required,
// additionalProperties (false or a schema), items (a schema), enum, const, minimum, maximum,
// exclusiveMinimum, exclusiveMaximum, minLength, maxLength (in code points), pattern is NOT
// checked, minItems, maxItems, anyOf, oneOf, allOf. Unknown keywords are ignored, so a
// schema using more than the subset is checked less strictly, never refused. Debian's JSON
// Schema library for C++ (valijson) pulls in Qt and Poco, and none reads Boost.JSON values,
// hence this.
//
// Pure; safe from any thread.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace dp::mcp {

// Ok, or a 422 `validation_failed` error whose details list each problem as
// {field: "arguments.a", code, message}; at most 20 problems are reported.
Status validate_arguments(const boost::json::value& arguments, const boost::json::object& schema);

}  // namespace dp::mcp
