// Hub: the live view at /ws. Clients subscribe to topics with filters and receive every
// matching event in order, exactly once, including the ones they missed while away.
//
// Protocol (JSON text frames; docs/api.md has the full description):
//   -> {"op":"subscribe","id":"1","topics":["agent.*"],"agentId":"...","lastEventId":42}
//   <- {"type":"ack","id":"1","op":"subscribe","subscription":"s1"}
//   <- {"type":"event","id":43,"topic":"agent.status.update","timestamp":"...",
//       "correlationId":"...","data":{...}}
//   -> {"op":"unsubscribe","id":"2","topics":["agent.*"]}     (no topics: all)
//   -> {"op":"ping","id":"3"}  <- {"type":"pong","id":"3"}
//   <- {"type":"error","id":"1","code":"invalid_request","message":"..."}
//   <- {"type":"resync_required","lastEventId":42,"oldestEventId":900,"latestEventId":1200}
// A malformed message gets an error frame; the connection stays.
//
// Ordering and resume: every event has the global `seq` the outbox gave it. The hub keeps,
// per client, the last seq it has dealt with. A client that resumes with `lastEventId`
// (in its first subscribe, or `?lastEventId=` on the upgrade URL) first gets the events after
// it from the store's outbox, while live events are held back; then the held ones, then live.
// A gap in the live stream (an event lost between bus and hub) is filled the same way. If the
// outbox no longer holds what a client needs, it gets `resync_required` and continues live.
//
// Thread safety: safe from any thread. Bus callbacks and catch-up work run on other threads
// than the connections' strands; per-client state sits behind a short mutex, and sends are
// queued on the connection (which keeps the order in which they were queued).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "bus/event_bus.hpp"
#include "http/websocket.hpp"
#include "store/store.hpp"

namespace dp::realtime {

struct HubOptions {
  std::size_t max_subscriptions = 32;  // per connection
  std::size_t max_topics = 64;         // per subscription
  std::size_t max_held = 20'000;       // live events held during a catch-up
  int replay_page = 500;
  std::vector<std::string> allowed_origins;  // besides the server's own origin
};

class Hub final : public http::WsHandler {
 public:
  Hub(store::Store& store, bus::EventBus& bus, boost::asio::thread_pool& blocking,
      HubOptions options);
  ~Hub() override;
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Subscribes to the bus; `latest_seq` is where live delivery starts for new clients.
  Status start();
  void stop();

  // http::WsHandler
  Status accept(const http::Request& request) override;
  void on_open(const std::shared_ptr<http::WsConnection>& connection,
               const http::Request& request) override;
  void on_message(const std::shared_ptr<http::WsConnection>& connection,
                  std::string_view text) override;
  void on_close(const std::shared_ptr<http::WsConnection>& connection) override;

  std::size_t clients() const;
  std::int64_t latest_seq() const;

  struct Client;
  struct HubEvent;

 private:
  void on_event(const bus::Event& event);
  void handle(const std::shared_ptr<Client>& client, std::string_view text);
  void begin_catch_up(const std::shared_ptr<Client>& client);
  void catch_up(const std::shared_ptr<Client>& client);

  store::Store& store_;
  bus::EventBus& bus_;
  boost::asio::thread_pool& blocking_;
  const HubOptions options_;
  std::unique_ptr<bus::Subscription> subscription_;

  mutable std::mutex mu_;
  std::unordered_map<const http::WsConnection*, std::shared_ptr<Client>> clients_;  // guarded by mu_
  std::int64_t latest_seq_ = 0;  // guarded by mu_
};

}  // namespace dp::realtime
