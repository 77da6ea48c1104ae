// expect: TS2561 'rom' does not exist in type '{ room: string; }'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/chat.js";

declare const dz: Drizzle;
typed(dz).topics.chat({ rom: "lobby" });
