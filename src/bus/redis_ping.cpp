#include "bus/redis_ping.hpp"

#include <hiredis/hiredis.h>

#include <boost/url/parse.hpp>

namespace dp::bus {

Status redis_ping(const std::string& url, std::chrono::milliseconds timeout) {
  auto u = boost::urls::parse_uri(url);
  if (!u || u->scheme() != "redis") {
    return Error::invalid_argument("bad_config", "redis url must look like redis://host:port");
  }
  const std::string host = u->host().empty() ? "127.0.0.1" : std::string(u->host());
  const int port = u->has_port() ? static_cast<int>(u->port_number()) : 6379;
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(timeout.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((timeout.count() % 1000) * 1000);
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c == nullptr) return Error::unavailable("redis: cannot allocate a context");
  if (c->err != 0) {
    std::string msg = c->errstr;
    redisFree(c);
    return Error::unavailable("redis at " + host + ":" + std::to_string(port) + ": " + msg);
  }
  redisSetTimeout(c, tv);
  std::string password = u->has_password() ? std::string(u->password()) : std::string();
  if (!password.empty()) {
    auto* auth = static_cast<redisReply*>(redisCommand(c, "AUTH %s", password.c_str()));
    const bool ok = auth != nullptr && auth->type != REDIS_REPLY_ERROR;
    if (auth != nullptr) freeReplyObject(auth);
    if (!ok) {
      redisFree(c);
      return Error::unavailable("redis: authentication failed");
    }
  }
  auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
  Status s = Ok{};
  if (reply == nullptr) {
    s = Error::unavailable(std::string("redis: ") + (c->err != 0 ? c->errstr : "no reply"));
  } else if (reply->type != REDIS_REPLY_STATUS ||
             std::string_view(reply->str, reply->len) != "PONG") {
    s = Error::unavailable("redis: unexpected reply to PING");
  }
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(c);
  return s;
}

}  // namespace dp::bus
