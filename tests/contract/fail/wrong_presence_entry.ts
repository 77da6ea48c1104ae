// expect: TS2353 Object literal may only specify known properties, and 'nick' does not exist in type 'ChatMemberInput'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/chat.js";

declare const dz: Drizzle;
await typed(dz).topics.chat({ room: "lobby" }).subscribe(() => {}, { presence: { nick: "ada" } });
