// expect: TS2322 Type '"nick"' is not assignable to type '"name"'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/chat.js";

declare const dz: Drizzle;
await typed(dz).topics.chat({ room: "lobby" }).presence({ fields: ["nick"] });
