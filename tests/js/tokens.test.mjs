// drizzle.js's token: getToken on every (re)connect, and a refresh ahead of each expiry the gateway announces.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CloseCode, Drizzle, refreshDelay, shouldReconnect } from "../../drizzle_gateway/static/drizzle.js";
import { FakeServer, FakeTime, settle } from "./fakes.mjs";

describe("refresh timing and the 4003 policy", () => {
  test("a refresh is due `ahead` before the expiry, halfway for short-lived tokens", () => {
    assert.equal(refreshDelay(3600000, 30000), 3570000);
    assert.equal(refreshDelay(40000, 30000), 20000);
    assert.equal(refreshDelay(1000, 30000), 500);
    assert.equal(refreshDelay(-5, 30000), 0);
  });

  test("4003 (token expired) is final unless the client can get a fresh token", () => {
    assert.equal(CloseCode.TOKEN_EXPIRED, 4003);
    assert.equal(shouldReconnect(CloseCode.TOKEN_EXPIRED), false);
    assert.equal(shouldReconnect(CloseCode.TOKEN_EXPIRED, { canRefresh: true }), true);
    assert.equal(shouldReconnect(CloseCode.UNAUTHENTICATED, { canRefresh: true }), false);
  });
});

/** A client whose getToken hands out "t1", "t2"... and records each call's time; connected and authenticated. */
async function signedIn({ expiresIn = 10, ...options } = {}) {
  const time = new FakeTime();
  const server = new FakeServer();
  const asked = [];
  const getToken = async () => {
    asked.push(time.now());
    return `t${asked.length}`;
  };
  const pending = Drizzle.connect("ws://test/ws", {
    WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false, getToken,
    backoff: { initial: 100, jitter: 0 }, ...options,
  });
  server.last.accept();
  await settle();
  server.last.reply(expiresIn === null ? { authenticated: true } : { authenticated: true, expires_in: expiresIn });
  const dz = await pending;
  const errors = [];
  dz.on("error", (error) => errors.push(error));
  return { dz, time, server, asked, errors };
}

function auths(socket) {
  return socket.sent.filter((frame) => frame.action === "__auth__").map((frame) => frame.data.token);
}

describe("getToken", () => {
  test("is asked on connect and again `refreshAhead` before the expiry, on the same socket", async () => {
    const { dz, time, server, asked } = await signedIn({ expiresIn: 10, refreshAhead: 3000 });
    assert.deepEqual(auths(server.last), ["t1"]);
    await time.advance(6999);
    assert.deepEqual(auths(server.last), ["t1"], "not before 7 s");
    await time.advance(1);
    assert.deepEqual(auths(server.last), ["t1", "t2"]);
    assert.deepEqual(asked, [0, 7000]);
    server.last.reply({ authenticated: true, expires_in: 10 }); // the next expiry: 10 s from now
    await settle();
    await time.advance(7000);
    assert.deepEqual(auths(server.last), ["t1", "t2", "t3"]);
    assert.equal(server.sockets.length, 1);
    assert.equal(dz.state, "open");
  });

  test("a short-lived token is refreshed halfway", async () => {
    const { time, server } = await signedIn({ expiresIn: 2 });
    await time.advance(999);
    assert.equal(auths(server.last).length, 1);
    await time.advance(1);
    assert.equal(auths(server.last).length, 2);
  });

  test("no expiry, no refresh", async () => {
    const { time, server } = await signedIn({ expiresIn: null });
    await time.advance(3600000);
    assert.deepEqual(auths(server.last), ["t1"]);
  });

  test("a refused refresh is an 'error' event and is tried again halfway to the expiry, while there is time", async () => {
    const { time, server, errors } = await signedIn({ expiresIn: 1, refreshAhead: 400 });
    await time.advance(600);
    assert.equal(auths(server.last).length, 2);
    server.last.reply(null, { code: "FORBIDDEN", error: "the token names another user" });
    await settle();
    assert.deepEqual(errors.map((error) => error.code), ["FORBIDDEN"]);
    await time.advance(199);
    assert.equal(auths(server.last).length, 2);
    await time.advance(1); // 400 ms were left: the next try at half of them
    assert.equal(auths(server.last).length, 3);
    server.last.reply(null, { code: "FORBIDDEN", error: "the token names another user" });
    await settle();
    await time.advance(100); // 200 ms left: a try 100 ms later
    assert.equal(auths(server.last).length, 4);
    server.last.reply(null, { code: "FORBIDDEN", error: "the token names another user" });
    await settle();
    await time.advance(1000); // 100 ms left: no more tries
    assert.equal(auths(server.last).length, 4);
  });

  test("after 4003 it reconnects and asks for a fresh token", async () => {
    const { dz, time, server, asked } = await signedIn({ expiresIn: null });
    const closes = [];
    dz.on("close", (info) => closes.push(info));
    server.last.drop(CloseCode.TOKEN_EXPIRED, "token expired");
    assert.deepEqual(closes, [{ code: 4003, reason: "token expired", willReconnect: true }]);
    await time.advance(100);
    assert.equal(server.sockets.length, 2);
    server.last.accept();
    await settle();
    assert.deepEqual(auths(server.last), ["t2"]);
    assert.equal(asked.length, 2);
    server.last.reply({ authenticated: true });
    await settle();
    assert.equal(dz.state, "open");
  });

  test("a dropped socket's refresh is not sent, and the new socket plans its own", async () => {
    const { dz, time, server } = await signedIn({ expiresIn: 10, refreshAhead: 3000 });
    const first = server.last;
    assert.notEqual(dz.refreshTimer, null);
    first.drop(CloseCode.GOING_AWAY);
    assert.equal(dz.refreshTimer, null, "its timer is cleared with the socket");
    await time.advance(100);
    server.last.accept();
    await settle();
    server.last.reply({ authenticated: true, expires_in: 60 });
    await settle();
    await time.advance(10000);
    assert.deepEqual(auths(first), ["t1"]);
    assert.deepEqual(auths(server.last), ["t2"]);
  });

  test("a getToken that fails on reconnect is tried again, not taken as a refusal", async () => {
    const time = new FakeTime();
    const server = new FakeServer();
    let calls = 0;
    const getToken = () => {
      calls += 1;
      if (calls === 2) throw new Error("token service down");
      return `t${calls}`;
    };
    const pending = Drizzle.connect("ws://test/ws", {
      WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false, getToken,
      backoff: { initial: 100, jitter: 0 },
    });
    server.last.accept();
    await settle();
    server.last.reply({ authenticated: true });
    const dz = await pending;
    server.last.drop(CloseCode.GOING_AWAY);
    await time.advance(100);
    server.last.accept(); // getToken throws
    await settle();
    assert.equal(dz.state, "reconnecting");
    await time.advance(200);
    assert.equal(server.sockets.length, 3);
    server.last.accept();
    await settle();
    assert.deepEqual(auths(server.last), ["t3"]);
  });

  test("a fixed string token is not refreshed, and 4003 is final for it", async () => {
    const time = new FakeTime();
    const server = new FakeServer();
    const pending = Drizzle.connect("ws://test/ws", {
      WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false, token: "fixed",
    });
    server.last.accept();
    await settle();
    server.last.reply({ authenticated: true, expires_in: 2 });
    const dz = await pending;
    await time.advance(1900);
    assert.deepEqual(auths(server.last), ["fixed"]);
    server.last.drop(CloseCode.TOKEN_EXPIRED, "token expired");
    await time.advance(60000);
    assert.equal(server.sockets.length, 1);
    assert.equal(dz.state, "closed");
  });
});
