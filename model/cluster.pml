/*
 * The cluster membership protocol of e2ee-chat (spec/CLUSTER.md), checked by spin: `npm run model`.
 *
 * Actors: NR relays sharing one Redis, NC clients racing to join and leave one room through them, an
 * impostor racing client 0 for its nickname with another key, relay 0 crashing (kill -9) at any moment,
 * its presence key expiring, the surviving relay reaping it, and pub/sub messages delayed arbitrarily
 * (a FIFO channel per relay, as Redis keeps order per subscriber connection).
 *
 * Each Redis script is one `atomic` inline named after the script (src/cluster/tables.ts, `a-b-c` here
 * `a_b_c`); a relay's event handler (Node runs one at a time) is one `atomic` step. A request is two
 * steps, as in the code: the script runs in Redis, then the relay handles its reply, and pub/sub
 * messages for the relay may be handled in between.
 *
 * Seeded bugs (test/cluster/model.test.ts compiles each and expects spin to find its counterexample):
 *   BUG_NONATOMIC_JOIN  the room's size is read in one step and the member added in another
 *   BUG_NONATOMIC_BIND  the binding is read in one step and written in another
 *   BUG_NO_TOKEN_CHECK  a relay forwards pub/sub events without checking the member's token
 *   BUG_MOVE_WITHOUT_CODE  a takeover moves the nickname without comparing the code's commitment
 *   BUG_NONATOMIC_EPOCH  the join reads the room epoch in one step and writes epoch + 1 in another
 *   BUG_STALE_MEMBERS  the joiner's member list is read in one step and the member added in another
 *   BUG_NO_SENDER_CHECK  a relay writes DELIVER without checking the sender's token against the
 *                      addressee's view of the room
 *
 * Delivery (spec/CLUSTER.md §3): no script decides a SEND. Each member's relay keeps that member's view
 * of the room (view[]: the tokens of the members it was told of, from the join reply and the PEER_JOINED
 * and PEER_LEFT written to it); the sender's relay decides a SEND against the sender's view
 * (send_from_view) and sends a plain PUBLISH to the addressee's relay, which Redis runs at some later
 * moment (publish_deliver: a command in flight may run after its relay crashed and was reaped); the
 * addressee's relay writes the DELIVER only if its token is the addressee's current one and the sender's
 * token is in the addressee's view (route).
 *
 * Room epochs (PROTOCOL.md §7.1 "Room epoch"): the scripts that change the membership change the epoch
 * in the same step (a room created at 1, one more per join and per leave, removed with the room), and
 * JOINED, PEER_JOINED and PEER_LEFT carry it (the seq field of the pub/sub and pending messages). The
 * properties, checked where a client reads each event: its epochs are consecutive from its JOINED on
 * (never skipped, repeated or out of order), and the roster it then holds (itself and the members it
 * was told of) is the room's membership after the change of that epoch, which the script that made
 * the change attaches to the event as a ghost field (the roster field of ps and pend, and the join's
 * reply), so two members that saw one epoch saw the same roster. The monitor checks that a room has
 * an epoch exactly while it has members.
 */

/* Held equal to src/limits.ts and src/cluster/tables.ts by test/cluster/model.test.ts. */
#define ROOM_LIMIT 2          /* LIMITS.DEFAULT_ROOM_SIZE */
#define TTL_BEATS 3           /* CLUSTER_TIMINGS.PRESENCE_TTL_MS / CLUSTER_TIMINGS.HEARTBEAT_MS */

#define NR 2                  /* relays */
#ifndef NC
#define NC 3                  /* clients, nicknames 0..NC-1 (2 or 3) */
#endif
#ifndef SENDS
#define SENDS 1               /* 1: members SEND to each other; 0: joins and leaves only */
#endif
#ifndef ROUNDS
#define ROUNDS 1              /* join attempts per client */
#endif
#define NOBODY 255

mtype = { OK, ROOM_FULL, NICK_IN_ROOM, NO_SUCH_PEER, NICK_BOUND,
          JOINED, PEER_JOINED, PEER_LEFT, DELIVER, LEFT, CLOSED };

/* ---- Redis ------------------------------------------------------------------------------------- */
byte member[NC];              /* room hash: nickname -> member token, 0 = not a member */
byte memberRelay[NC];         /* the relay holding that member */
byte members;                 /* HLEN of the room hash */
byte epoch;                   /* e2ee:epoch:<room>, 0 = no room */
byte bound[2];                /* nickname 0's binding: key + 1, 0 = free (index 1 unused) */
byte rec0;                    /* nickname 0's recovery commitment: the code it was made from, 0 = none */
bool registered[NR];          /* the relay is in the relay set */
byte ttl[NR];                 /* its presence key's remaining lifetime, in heartbeats; 0 = expired */
/*
 * pub/sub, one channel per relay: kind, target client, target token, subject nickname, seq (DELIVER) or
 * epoch (PEER_JOINED, PEER_LEFT), the ghost roster: the member bitmask after the change (0 for DELIVER),
 * and the subject's token (PEER_JOINED: the joiner's, DELIVER: the sender's; 0 for PEER_LEFT)
 */
chan ps[NR] = [8] of { mtype, byte, byte, byte, byte, byte, byte };

/* ---- relays (process-local state) ----------------------------------------------------------------- */
bool crashed[NR];
byte activeTok[NC];           /* the token the client's relay routes events for, 0 = none */
byte pendingTok[NC];          /* a join in flight: events for this token wait in pend[c] */
chan pend[NC] = [8] of { mtype, byte, byte, byte, byte };
byte relayOf[NC];
byte view[NC * NC];           /* [c * NC + x]: the token of member x in client c's view, 0 = not in it */
/* A token names its relay (the code's `<relay id>.<counter>`): here token t is client (t - 1) / ROUNDS's. */
#define RELAY_OF_TOKEN(t) relayOf[((t) - 1) / ROUNDS]

/* ---- what the clients saw (for the properties) ------------------------------------------------------ */
bool inRoom[NC];              /* JOINED received, LEFT not yet */
byte knows[NC];               /* bit x: x announced (JOINED, PEER_JOINED) and not since PEER_LEFT */
bool joining[NC];             /* a JOIN awaits its answer */
bool leaving[NC];             /* a LEAVE awaits LEFT */
byte ep[NC];                  /* the epoch of the last membership event received, 0 = not in the room */
byte lastSeq[NC * NC];        /* [to * NC + from]: last seq received from `from` */
byte sentSeq[NC * NC];        /* [from * NC + to]: last seq the sender's relay published */
bool welcomed[2];             /* key k holds WELCOME for nickname 0 on a live connection */

/* Scratch variables, dead between steps, so not part of the state (spin's `hidden`). */
hidden byte i, j, k;
hidden byte hKind, hTarget, hTok, hSubj, hSeq, hRos, hStok;

#if NC == 3
#define ON_RELAY(r) ((memberRelay[0] == r && member[0] != 0) + (memberRelay[1] == r && member[1] != 0) + (memberRelay[2] == r && member[2] != 0))
#define MEMBERS ((member[0] != 0) + (member[1] != 0) + (member[2] != 0))
#else
#define ON_RELAY(r) ((memberRelay[0] == r && member[0] != 0) + (memberRelay[1] == r && member[1] != 0))
#define MEMBERS ((member[0] != 0) + (member[1] != 0))
#endif

/* ---- the scripts --------------------------------------------------------------------------------- */

inline bind_nickname_if_free_or_same_key(k, res) {
#ifdef BUG_NONATOMIC_BIND
  byte seen;
  d_step { seen = bound[0] };
  d_step {
    if
    :: seen == 0 -> bound[0] = k + 1; res = OK
    :: seen == k + 1 -> res = OK
    :: else -> res = NICK_BOUND
    fi
  }
#else
  d_step {
    if
    :: bound[0] == 0 -> bound[0] = k + 1; res = OK
    :: bound[0] == k + 1 -> res = OK
    :: else -> res = NICK_BOUND
    fi
  }
#endif
}

/* RECOVER (PROTOCOL.md §7.5): key k presents code `code`; the nickname moves only if `code` made its commitment. */
inline move_nickname_with_recovery_code(k, code, res) {
  d_step {
    if
    :: bound[0] == 0 -> bound[0] = k + 1; rec0 = code + 10; res = OK
#ifdef BUG_MOVE_WITHOUT_CODE
    :: bound[0] != 0 -> bound[0] = k + 1; rec0 = code + 10; res = OK
#else
    :: bound[0] != 0 && rec0 != 0 && rec0 == code -> bound[0] = k + 1; rec0 = code + 10; res = OK
    :: bound[0] != 0 && (rec0 == 0 || rec0 != code) -> res = NICK_BOUND
#endif
    fi
  }
}

/* SET_RECOVERY: only the key the nickname is bound to registers the commitment of its code. */
inline set_recovery_if_same_key(k, code, res) {
  d_step {
    if
    :: bound[0] == k + 1 -> rec0 = code; res = OK
    :: else -> res = NICK_BOUND
    fi
  }
}

/* PEER_JOINED of c (token t) at epoch e, with roster g, to every member, published in the same step as the add. */
inline announce_join(c, t, e, g) {
  i = 0;
  do
  :: i < NC -> if :: member[i] != 0 -> ps[memberRelay[i]]!PEER_JOINED, i, member[i], c, e, g, t :: else -> skip fi; i++
  :: else -> break
  od
}

/*
 * The join's reply lists the members before the add with their tokens, into the calling client's rt[]
 * (rt[x]: member x's token, 0 = none; an array cannot be an inline's parameter).
 */
inline reply_tokens(c) {
  i = 0;
  do
  :: i < NC -> if :: i != c -> rt[i] = member[i] :: else -> rt[i] = 0 fi; i++
  :: else -> break
  od
}

inline others_mask(c, m) {
  m = 0; i = 0;
  do
  :: i < NC -> if :: member[i] != 0 && i != c -> m = m | (1 << i) :: else -> skip fi; i++
  :: else -> break
  od
}

/* A member added at the next epoch e; g is the membership after it (a ghost, for the properties). */
inline join_if_room_has_space(c, r, t, res, m, e, g) {
#ifdef BUG_NONATOMIC_EPOCH
  byte seenEpoch;
  d_step { seenEpoch = epoch };
  d_step {
    if
    :: !registered[r] -> res = CLOSED
    :: registered[r] && member[c] != 0 -> res = NICK_IN_ROOM
    :: registered[r] && member[c] == 0 && members >= ROOM_LIMIT -> res = ROOM_FULL
    :: else -> others_mask(c, m); epoch = seenEpoch + 1; e = epoch; g = m | (1 << c);
               reply_tokens(c); announce_join(c, t, e, g); member[c] = t; memberRelay[c] = r; members++; res = OK
    fi
  }
#elif defined(BUG_STALE_MEMBERS)
  d_step { others_mask(c, m) };   /* the member list read before the add, apart from it */
  d_step {
    if
    :: !registered[r] -> res = CLOSED
    :: registered[r] && member[c] != 0 -> res = NICK_IN_ROOM
    :: registered[r] && member[c] == 0 && members >= ROOM_LIMIT -> res = ROOM_FULL
    :: else -> epoch++; e = epoch; others_mask(c, g); g = g | (1 << c);
               reply_tokens(c); announce_join(c, t, e, g); member[c] = t; memberRelay[c] = r; members++; res = OK
    fi
  }
#elif defined(BUG_NONATOMIC_JOIN)
  byte seenSize;
  d_step { seenSize = members };
  d_step {
    if
    :: !registered[r] -> res = CLOSED   /* a reaped relay adds no member (its join was in flight) */
    :: registered[r] && member[c] != 0 -> res = NICK_IN_ROOM
    :: registered[r] && member[c] == 0 && seenSize >= ROOM_LIMIT -> res = ROOM_FULL
    :: else -> others_mask(c, m); epoch++; e = epoch; g = m | (1 << c);
               reply_tokens(c); announce_join(c, t, e, g); member[c] = t; memberRelay[c] = r; members++; res = OK
    fi
  }
#else
  d_step {
    if
    :: !registered[r] -> res = CLOSED   /* a reaped relay adds no member (its join was in flight) */
    :: registered[r] && member[c] != 0 -> res = NICK_IN_ROOM
    :: registered[r] && member[c] == 0 && members >= ROOM_LIMIT -> res = ROOM_FULL
    :: else -> others_mask(c, m); epoch++; e = epoch; g = m | (1 << c);
               reply_tokens(c); announce_join(c, t, e, g); member[c] = t; memberRelay[c] = r; members++; res = OK
    fi
  }
#endif
}

/*
 * The sender's relay decides a SEND of c to p against c's view: the addressee's token (tp, 0 for
 * NO_SUCH_PEER) and the seq the DELIVER carries. One relay event handler, one step.
 */
inline send_from_view(c, p, tp, q) {
  if
  :: p != c && view[c * NC + p] != 0 -> tp = view[c * NC + p]; sentSeq[c * NC + p]++; q = sentSeq[c * NC + p]
  :: else -> tp = 0
  fi
}

/*
 * Redis runs the PUBLISH of c's (token tc) DELIVER with seq q to p (token tp) on tp's relay's channel.
 * (The code publishes a turn's W messages for one relay as one M message: those PUBLISHes back to back.)
 */
inline publish_deliver(c, tc, p, tp, q) {
  d_step { ps[RELAY_OF_TOKEN(tp)]!DELIVER, p, tp, c, q, 0, tc }
}

/*
 * Removes nickname c if it still holds token t; PEER_LEFT at the next epoch (with the roster after it,
 * in hRos) to the rest in the same step. The last member's leave removes the room with its epoch.
 */
inline remove_member(c, t) {
  if
  :: member[c] == t && t != 0 ->
       member[c] = 0; members--;
       if
       :: members == 0 -> epoch = 0
       :: else -> epoch++; others_mask(NOBODY, hRos)
       fi;
       i = 0;
       do
       :: i < NC -> if :: member[i] != 0 -> ps[memberRelay[i]]!PEER_LEFT, i, member[i], c, epoch, hRos, 0 :: else -> skip fi; i++
       :: else -> break
       od
  :: else -> skip
  fi
}

inline leave_and_announce(c, t) {
  d_step { remove_member(c, t) }
}

inline reap_dead_relays() {
  d_step {
    j = 0;
    do
    :: j < NR ->
         if
         :: registered[j] && ttl[j] == 0 ->
              k = 0;
              do
              :: k < NC -> if :: member[k] != 0 && memberRelay[k] == j -> remove_member(k, member[k]) :: else -> skip fi; k++
              :: else -> break
              od;
              registered[j] = false
         :: else -> skip
         fi;
         j++
    :: else -> break
    od
  }
}

inline refresh_relay_presence(r) {
  d_step { if :: registered[r] -> ttl[r] = TTL_BEATS :: else -> skip fi }
}

/* Presence of relay r: heartbeats while alive; after a crash the key runs down to expiry. */
proctype presence(byte r) {
end:
  do
  :: !crashed[r] -> refresh_relay_presence(r)
  :: crashed[r] && ttl[r] > 0 -> ttl[r]--
  :: crashed[r] && ttl[r] == 0 -> break
  od
}

/* The surviving relay's periodic reaper. */
proctype reaper() {
end:
  do
  :: !crashed[1] && registered[0] && ttl[0] == 0 -> reap_dead_relays()
  od
}

/* Relay 0 may be killed (kill -9) at any moment, or never. */
proctype crash() {
  if
  :: d_step { crashed[0] = true; welcomed[0] = false }
  :: skip
  fi
}

/*
 * Client 0's nickname claimed through relay 1 with another key: by AUTH, or by RECOVER with a code of its
 * own (2: it does not know client 0's code 1). Code c's fresh commitment in a move is c + 10, a code only
 * its presenter holds.
 */
proctype impostor() {
  mtype res;
  if
  :: bind_nickname_if_free_or_same_key(1, res)
  :: move_nickname_with_recovery_code(1, 2, res)
  fi;
  if
  :: res == OK -> welcomed[1] = true; assert(!(welcomed[0] && welcomed[1]))
  :: else -> skip
  fi
}

/*
 * What a client does with a frame its relay writes to it. TCP keeps the relay's order, so the client
 * reading the frame is taken to be the relay's write (the properties are checked on the client's view).
 */
inline receive(c, kind, arg, seq, ros) {
  if
  :: kind == JOINED -> assert(joining[c]); joining[c] = false; inRoom[c] = true; knows[c] = arg;
       assert(seq > 0 && ros == (knows[c] | (1 << c))); ep[c] = seq
  :: kind == ROOM_FULL || kind == NICK_IN_ROOM || kind == CLOSED -> assert(joining[c]); joining[c] = false
  :: kind == PEER_JOINED -> assert(inRoom[c]); knows[c] = knows[c] | (1 << arg);
       assert(seq == ep[c] + 1); assert(ros == (knows[c] | (1 << c))); ep[c] = seq
  :: kind == PEER_LEFT -> assert(inRoom[c]); assert(knows[c] & (1 << arg)); knows[c] = knows[c] & ~(1 << arg);
       assert(seq == ep[c] + 1); assert(ros == (knows[c] | (1 << c))); ep[c] = seq
  :: kind == DELIVER ->
       /* never to a non-member, never from a nickname after its PEER_LEFT, in order, at most once */
       assert(inRoom[c]);
       assert(knows[c] & (1 << arg));
       assert(seq > lastSeq[c * NC + arg]);
       lastSeq[c * NC + arg] = seq
  :: kind == LEFT -> assert(inRoom[c] && leaving[c]); inRoom[c] = false; leaving[c] = false; knows[c] = 0; ep[c] = 0
  fi
}

/*
 * The addressee's relay writes an event to client c (its token already matched): a DELIVER only while
 * its sender's token st is in c's view; PEER_JOINED and PEER_LEFT keep the view. A DELIVER is dropped
 * only once its sender is no longer that member (checked: the view is never behind for a live sender).
 */
inline route(c, kind, arg, seq, ros, st) {
  if
#ifndef BUG_NO_SENDER_CHECK
  :: kind == DELIVER && view[c * NC + arg] != st -> assert(member[arg] != st)
#endif
  :: else ->
       if
       :: kind == PEER_JOINED -> view[c * NC + arg] = st
       :: kind == PEER_LEFT -> view[c * NC + arg] = 0
       :: else -> skip
       fi;
       receive(c, kind, arg, seq, ros)
  fi
}

/* A client with its connection's handler on relay relayOf[c]. */
proctype client(byte c) {
  byte r = relayOf[c];
  byte round, sent, t, m, p, e, g, tp, q;
  byte rt[NC];
  mtype res;

  if
  :: c == 0 ->
       bind_nickname_if_free_or_same_key(0, res);
       if
       :: res == OK -> d_step { if :: !crashed[r] -> welcomed[0] = true; assert(!(welcomed[0] && welcomed[1])) :: else -> skip fi }
       :: else -> goto done
       fi;
       /* registers its recovery code 1 (SET_RECOVERY), unless the nickname moved meanwhile */
       if
       :: !crashed[r] ->
            set_recovery_if_same_key(0, 1, res);
            if
            :: res != OK -> d_step { welcomed[0] = false }; goto done
            :: else -> skip
            fi
       :: crashed[r] -> goto done
       fi
  :: else -> skip
  fi;

  do
  :: crashed[r] -> goto done
  :: !crashed[r] && round < ROUNDS && !inRoom[c] && !joining[c] ->
       round++;
       t = c * ROUNDS + round;
       d_step { joining[c] = true; pendingTok[c] = t };
       join_if_room_has_space(c, r, t, res, m, e, g);
       /* the relay handles the script's reply: JOINED (and the view from its tokens) first, then what waited for it */
       d_step {
         if
         :: crashed[r] -> skip
         :: !crashed[r] && res == OK ->
              receive(c, JOINED, m, e, g);
              i = 0;
              do
              :: i < NC -> view[c * NC + i] = rt[i]; i++
              :: else -> break
              od;
              activeTok[c] = t; pendingTok[c] = 0;
              do
              :: pend[c]?hKind, hSubj, hSeq, hRos, hStok -> route(c, hKind, hSubj, hSeq, hRos, hStok)
              :: empty(pend[c]) -> break
              od
         :: !crashed[r] && res != OK ->
              pendingTok[c] = 0;
              do
              :: pend[c]?hKind, hSubj, hSeq, hRos, hStok
              :: empty(pend[c]) -> break
              od;
              receive(c, res, 0, 0, 0)
         fi;
         i = 0;
         do
         :: i < NC -> rt[i] = 0; i++
         :: else -> break
         od;
         res = 0; m = 0; t = 0; e = 0; g = 0; hKind = 0; hSubj = 0; hSeq = 0; hRos = 0; hStok = 0
       }
  :: d_step {
       !crashed[r] && inRoom[c] && !leaving[c] && knows[c] != 0 && sent < round && SENDS ->
       /* SEND to one of the peers this client knows of; its relay decides it against the view */
       sent = round;
       if
       :: knows[c] & 1 -> p = 0
       :: knows[c] & 2 -> p = 1
#if NC == 3
       :: knows[c] & 4 -> p = 2
#endif
       fi;
       send_from_view(c, p, tp, q);
       t = activeTok[c]
     };
       if
       :: tp != 0 -> publish_deliver(c, t, p, tp, q)
       :: else -> skip
       fi;
       d_step { p = 0; tp = 0; q = 0; t = 0 }
  :: !crashed[r] && inRoom[c] && !leaving[c] ->
       d_step {   /* stop routing (and forget the view) before the script runs */
         leaving[c] = true; t = activeTok[c]; activeTok[c] = 0;
         i = 0;
         do
         :: i < NC -> view[c * NC + i] = 0; i++
         :: else -> break
         od
       };
       leave_and_announce(c, t);
       d_step { if :: !crashed[r] -> receive(c, LEFT, 0, 0, 0) :: else -> skip fi; t = 0 }
  :: !crashed[r] && round == ROUNDS && !inRoom[c] && !joining[c] -> break
  od;
done:
  skip;
  d_step {
    joining[c] = false; inRoom[c] = false; knows[c] = 0; ep[c] = 0;
    i = 0;
    do
    :: i < NC -> view[c * NC + i] = 0; i++
    :: else -> break
    od
  }
}

/* ---- a relay's pub/sub handler -------------------------------------------------------------------- */

proctype subscriber(byte r) {
end:
  do
  :: d_step {
       ps[r]?hKind, hTarget, hTok, hSubj, hSeq, hRos, hStok ->
       if
       :: crashed[r] -> skip
#ifdef BUG_NO_TOKEN_CHECK
       :: else -> route(hTarget, hKind, hSubj, hSeq, hRos, hStok)
#else
       :: !crashed[r] && activeTok[hTarget] == hTok -> route(hTarget, hKind, hSubj, hSeq, hRos, hStok)
       :: !crashed[r] && activeTok[hTarget] != hTok && pendingTok[hTarget] == hTok -> assert(nfull(pend[hTarget])); pend[hTarget]!hKind, hSubj, hSeq, hRos, hStok
       :: !crashed[r] && activeTok[hTarget] != hTok && pendingTok[hTarget] != hTok -> skip  /* stale: dropped */
#endif
       fi;
       hKind = 0; hTarget = 0; hTok = 0; hSubj = 0; hSeq = 0; hRos = 0; hStok = 0
     }
  od
}

/* Safety that holds in every state (checked as a never claim-free invariant by the monitor). */
active proctype monitor() {
end:
  do
  :: d_step { members > ROOM_LIMIT -> assert(members <= ROOM_LIMIT) }
  :: d_step { MEMBERS != members -> assert(false) }
  :: d_step { (epoch == 0) != (members == 0) -> assert((epoch == 0) == (members == 0)) }
  od
}

init {
  atomic {
    registered[0] = true; registered[1] = true;
    ttl[0] = TTL_BEATS; ttl[1] = TTL_BEATS;
    relayOf[0] = 0; relayOf[1] = 1;
#if NC == 3
    if :: relayOf[2] = 0 :: relayOf[2] = 1 fi;
#endif
    run subscriber(0); run subscriber(1);
    run presence(0);   /* relay 1 never crashes: its key never expires */
    run reaper();
    run crash();
    run impostor();
    run client(0); run client(1);
#if NC == 3
    run client(2)
#endif
  }
}

/* Liveness, under weak fairness (pan -a -f). */
#if NC == 3
ltl join_answered { [] ((joining[0] -> <> !joining[0]) && (joining[1] -> <> !joining[1]) && (joining[2] -> <> !joining[2])) }
#else
ltl join_answered { [] ((joining[0] -> <> !joining[0]) && (joining[1] -> <> !joining[1])) }
#endif
ltl dead_relay_reaped { [] (crashed[0] -> <> (ON_RELAY(0) == 0)) }
