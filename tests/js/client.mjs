// A NATS-native client in another language: nats.js, written from docs/NATS.md alone (subjects,
// headers, message fields, what the `client` user may do). It performs every step of the
// contract once and prints one JSON object: what it sent and what it saw. The Python test
// (tests/test_nats_clients.py) runs it against a real nats-server and a real worker and checks
// each promise; this file only observes.
//
//   NATS_URL=nats://127.0.0.1:4222 NATS_USER=client NATS_PASSWORD=... node tests/js/client.mjs
import { connect, headers, nuid, JSONCodec, RequestStrategy, AckPolicy } from "nats";

const jc = JSONCodec();
const seen = {};
const nc = await connect({
  servers: process.env.NATS_URL,
  user: process.env.NATS_USER,
  pass: process.env.NATS_PASSWORD,
});
const violations = [];
(async () => {
  for await (const status of nc.status()) {
    const ctx = status.permissionContext;
    if (status.type === "error" && ctx) violations.push(`${ctx.operation} ${ctx.subject}`);
  }
})();
const js = nc.jetstream();
const jsm = await nc.jetstreamManager();

function message(msg) {
  const hdrs = {};
  if (msg.headers) for (const [key, values] of msg.headers) hdrs[key] = values[0];
  return { subject: msg.subject, headers: hdrs, body: msg.data.length ? jc.decode(msg.data) : null };
}

function request(overrides) {
  return {
    taskId: nuid.next(),
    messageId: `js-${nuid.next()}`,
    text: "Hello everyone, how are you?",
    sourceLanguage: "en",
    targetLanguages: ["fr"],
    conversationId: "js-conversation",
    ...overrides,
  };
}

async function collect(sub, count, ms = 60000) {
  const got = [];
  const timer = setTimeout(() => sub.unsubscribe(), ms);
  for await (const msg of sub) {
    got.push(message(msg));
    if (got.length >= count) break;
  }
  clearTimeout(timer);
  return got;
}

// 1. JetStream: publish with Nats-Msg-Id and Translate-Reply-To an inbox of ours
async function viaJetStream(body) {
  const inbox = `_INBOX.${nuid.next()}`;
  const sub = nc.subscribe(inbox);
  const h = headers();
  h.set("Nats-Msg-Id", body.taskId);
  h.set("Translate-Reply-To", inbox);
  const ack = await js.publish("translate.request.normal", jc.encode(body), { headers: h });
  const results = await collect(sub, new Set(body.targetLanguages.map((t) => t.toLowerCase())).size);
  return { sent: body, ack: { stream: ack.stream, duplicate: ack.duplicate }, results };
}
seen.jetstream = await viaJetStream(request({ targetLanguages: ["fr", "de"] }));
seen.jetstreamInvalid = await viaJetStream(request({ text: undefined, targetLanguages: ["fr", "de"] }));

// 2. Stored results on our own subject, read by a consumer of our own; the same target three
// times gets one result, which says so
{
  const subject = "translate.result.jsclient";
  const core = nc.subscribe(subject);
  const body = request({ targetLanguages: ["fr", "FR", "fr"] });
  const h = headers();
  h.set("Nats-Msg-Id", body.taskId);
  h.set("Translate-Reply-To", subject);
  await js.publish("translate.request.normal", jc.encode(body), { headers: h });
  const live = await collect(core, 1);
  const name = `jsclient-${nuid.next()}`;
  await jsm.consumers.add("TRANSLATE_RESULTS", {
    name, filter_subject: subject, ack_policy: AckPolicy.Explicit, inactive_threshold: 60e9,
  });
  const consumer = await js.consumers.get("TRANSLATE_RESULTS", name);
  const stored = [];
  for await (const msg of await consumer.fetch({ max_messages: 10, expires: 2000 })) {
    stored.push(message(msg));
    msg.ack();
  }
  await jsm.consumers.delete("TRANSLATE_RESULTS", name);
  seen.stored = { sent: body, live, stored };
}

// 3. Request-reply on translate.rpc: one target, one reply; several, as many replies
{
  const one = request({ targetLanguages: ["de"] });
  const reply = await nc.request("translate.rpc", jc.encode(one), { timeout: 60000 });
  seen.rpc = { sent: one, reply: message(reply) };
  const many = request({ targetLanguages: ["fr", "de", "ro"] });
  const replies = [];
  const iter = await nc.requestMany("translate.rpc", jc.encode(many), {
    strategy: RequestStrategy.Count, maxMessages: 3, maxWait: 60000,
  });
  for await (const msg of iter) replies.push(message(msg));
  seen.rpcMany = { sent: many, replies };
  const invalid = request({ text: "   ", targetLanguages: ["fr"] });
  seen.rpcInvalid = {
    sent: invalid,
    reply: message(await nc.request("translate.rpc", jc.encode(invalid), { timeout: 30000 })),
  };
  const unaddressed = { messageId: "js-unaddressed", text: "Hello" };
  seen.rpcUnaddressed = {
    reply: message(await nc.request("translate.rpc", jc.encode(unaddressed), { timeout: 30000 })),
  };
}

// 4. Language detection, and the micro service's discovery
seen.detect = message(
  await nc.request("translate.detect", jc.encode({ text: "Bonjour à tous, comment ça va ?" }), {
    timeout: 30000,
  }),
);
{
  const services = nc.services.client();
  const pings = [];
  for await (const ping of await services.ping("translator")) pings.push(ping);
  const infos = [];
  for await (const info of await services.info("translator")) infos.push(info);
  const stats = [];
  for await (const stat of await services.stats("translator")) stats.push(stat);
  seen.services = { pings, infos, stats };
}

// 5. A reply subject that is not ours to use: the alerts subject
{
  const events = nc.subscribe("translate.event.*");
  const abuse = request({ taskId: `abuse-${nuid.next()}` });
  const h = headers();
  h.set("Nats-Msg-Id", abuse.taskId);
  h.set("Translate-Reply-To", "translate.event.alert");
  await js.publish("translate.request.normal", jc.encode(abuse), { headers: h });
  seen.abuse = { sent: abuse, eventsSubscribed: !events.isClosed() };
  events.unsubscribe();
}

// 6. What the client user may not do
async function refusedSubscription(subject) {
  const sub = nc.subscribe(subject);
  const closed = sub.closed.then(() => true, () => true);
  const outcome = await Promise.race([closed, new Promise((r) => setTimeout(() => r(false), 2000))]);
  sub.unsubscribe();
  return outcome;
}
async function refusedCall(call) {
  try {
    await call();
    return false;
  } catch (err) {
    return String(err.message || err);
  }
}
seen.refused = {
  subscribeGatewayResults: await refusedSubscription("translate.gateway.result.zmq_compat"),
  subscribeGateway: await refusedSubscription("translate.gateway.>"),
  subscribeEverything: await refusedSubscription("translate.>"),
  subscribeDeadLetters: await refusedSubscription("translate.dead.>"),
  deleteStream: await refusedCall(() => jsm.streams.delete("TRANSLATE_NORMAL")),
  purgeStream: await refusedCall(() => jsm.streams.purge("TRANSLATE_RESULTS")),
  deleteShimConsumer: await refusedCall(() =>
    jsm.consumers.delete("TRANSLATE_GATEWAY_RESULTS", "zmq_compat"),
  ),
  consumeGatewayResults: await refusedCall(() =>
    jsm.consumers.add("TRANSLATE_GATEWAY_RESULTS", {
      name: "peek", filter_subject: "translate.gateway.result.zmq_compat", ack_policy: AckPolicy.Explicit,
    }),
  ),
  consumeEveryResultStream: await refusedCall(() =>
    jsm.consumers.add("TRANSLATE_RESULTS", { name: "peek", filter_subject: ">", ack_policy: AckPolicy.Explicit }),
  ),
  consumeDeadLetters: await refusedCall(() =>
    jsm.consumers.add("TRANSLATE_DLQ", { name: "peek", ack_policy: AckPolicy.Explicit }),
  ),
};
nc.publish("translate.gateway.request.normal", jc.encode(request({ taskId: "js-forged-gateway" })));
nc.publish("translate.result.jsclient", jc.encode({ forged: true }));
await nc.flush();
await new Promise((r) => setTimeout(r, 1000));
seen.violations = violations;
await nc.drain();
console.log(JSON.stringify(seen));
