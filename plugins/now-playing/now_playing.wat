;; now-playing: turns the player's current track into one status-bar line.
;;
;;   call("format", {"title": "Song", "artist": "Band", "position": 83.2, "duration": 296})
;;     -> {"line": "Band - Song  1:23/4:56"}
;;
;; Follows the mfx WebAssembly ABI (plugins/include/mfx_wasm_abi.md). Written in plain WAT so
;; it builds with nothing but the wasmtime Python package (see the Makefile).
;; String values are copied into the output as they were escaped in the input, which keeps
;; the output valid JSON without decoding escapes. Missing or null fields are left out;
;; times of an hour or more print as h:mm:ss.
(module
  (import "mfx" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)

  ;; Linear memory: static data below 64 KiB, the heap above it.
  (global $top (mut i32) (i32.const 65536))     ;; heap: a stack of allocations
  (global $pos (mut i32) (i32.const 0))         ;; parser cursor
  (global $end (mut i32) (i32.const 0))
  (global $out (mut i32) (i32.const 0))         ;; output cursor
  (global $sp (mut i32) (i32.const 0))          ;; last string parsed: start, length
  (global $sl (mut i32) (i32.const 0))
  (global $num (mut f64) (f64.const 0))         ;; last number parsed
  (global $tp (mut i32) (i32.const 0))          ;; title (-1 length: absent)
  (global $tl (mut i32) (i32.const -1))
  (global $ap (mut i32) (i32.const 0))          ;; artist
  (global $al (mut i32) (i32.const -1))
  (global $position (mut f64) (f64.const -1))   ;; seconds (-1: absent)
  (global $duration (mut f64) (f64.const -1))

  (data (i32.const 1024) "format")
  (data (i32.const 1040) "title")
  (data (i32.const 1048) "artist")
  (data (i32.const 1056) "position")
  (data (i32.const 1072) "duration")
  (data (i32.const 1088) "{\"line\":\"")
  (data (i32.const 1104) "Unknown title")
  (data (i32.const 1120) "now-playing ready")
  (data (i32.const 1152) "config must be a JSON object")
  (data (i32.const 1184) " - ")
  (data (i32.const 1200) "{\"error\":{\"type\":\"UnknownMethod\",\"message\":\"now-playing only supports the method format\"}}")
  (data (i32.const 1400) "{\"error\":{\"type\":\"InvalidInput\",\"message\":\"expected a JSON object with string title and artist and numeric position and duration in seconds\"}}")

  ;; --- allocator: a mark/release arena. The host frees in reverse order of allocation
  ;; (response, then request), so freeing a block releases it and everything above it; the
  ;; length is not needed (the response's block may be larger than the response).

  (func $align8 (param $n i32) (result i32)
    (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8)))

  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local $new i32) (local $pages i32)
    (local.set $p (global.get $top))
    (local.set $new (call $align8 (i32.add (local.get $p) (local.get $n))))
    (if (i32.lt_u (local.get $new) (local.get $p)) (then (return (i32.const 0))))
    (local.set $pages
      (i32.sub (i32.wrap_i64 (i64.shr_u (i64.add (i64.extend_i32_u (local.get $new)) (i64.const 65535))
                                        (i64.const 16)))
               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1))
        (then (return (i32.const 0))))))
    (global.set $top (local.get $new))
    (local.get $p))

  (func (export "dealloc") (param $p i32) (param $n i32)
    (if (i32.and (i32.ge_u (local.get $p) (i32.const 65536))
                 (i32.lt_u (local.get $p) (global.get $top)))
      (then (global.set $top (local.get $p)))))

  ;; --- a small JSON reader --------------------------------------------------------------

  (func $eq (param $a i32) (param $al i32) (param $b i32) (param $bl i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $al) (local.get $bl)) (then (return (i32.const 0))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $al)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                  (i32.load8_u (i32.add (local.get $b) (local.get $i))))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 1))

  (func $peek (result i32)
    (if (result i32) (i32.ge_u (global.get $pos) (global.get $end))
      (then (i32.const -1))
      (else (i32.load8_u (global.get $pos)))))

  (func $adv
    (global.set $pos (i32.add (global.get $pos) (i32.const 1))))

  (func $ws (local $c i32)
    (block $done (loop $next
      (local.set $c (call $peek))
      (br_if $done
        (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                         (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
      (call $adv)
      (br $next))))

  (func $expect (param $c i32) (result i32)
    (if (i32.ne (call $peek) (local.get $c)) (then (return (i32.const 0))))
    (call $adv)
    (i32.const 1))

  (func $digit (param $c i32) (result i32)
    (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)))

  ;; A string: sets $sp/$sl to its raw (still escaped) contents.
  (func $string (result i32) (local $c i32)
    (if (i32.eqz (call $expect (i32.const 34))) (then (return (i32.const 0))))
    (global.set $sp (global.get $pos))
    (block $done (loop $next
      (local.set $c (call $peek))
      (if (i32.eq (local.get $c) (i32.const -1)) (then (return (i32.const 0))))
      (if (i32.lt_u (local.get $c) (i32.const 32)) (then (return (i32.const 0))))
      (br_if $done (i32.eq (local.get $c) (i32.const 34)))
      (if (i32.eq (local.get $c) (i32.const 92))
        (then
          (call $adv)
          (if (i32.eq (call $peek) (i32.const -1)) (then (return (i32.const 0))))))
      (call $adv)
      (br $next)))
    (global.set $sl (i32.sub (global.get $pos) (global.get $sp)))
    (call $adv)
    (i32.const 1))

  ;; A number: sets $num.
  (func $number (result i32)
    (local $neg i32) (local $v f64) (local $scale f64) (local $digits i32) (local $e i32) (local $eneg i32)
    (if (i32.eq (call $peek) (i32.const 45)) (then (local.set $neg (i32.const 1)) (call $adv)))
    (block $done (loop $next
      (br_if $done (i32.eqz (call $digit (call $peek))))
      (local.set $v (f64.add (f64.mul (local.get $v) (f64.const 10))
                             (f64.convert_i32_u (i32.sub (call $peek) (i32.const 48)))))
      (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
      (call $adv)
      (br $next)))
    (if (i32.eqz (local.get $digits)) (then (return (i32.const 0))))
    (if (i32.eq (call $peek) (i32.const 46))
      (then
        (call $adv)
        (local.set $scale (f64.const 1))
        (local.set $digits (i32.const 0))
        (block $done (loop $next
          (br_if $done (i32.eqz (call $digit (call $peek))))
          (local.set $scale (f64.div (local.get $scale) (f64.const 10)))
          (local.set $v (f64.add (local.get $v)
                                 (f64.mul (local.get $scale)
                                          (f64.convert_i32_u (i32.sub (call $peek) (i32.const 48))))))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
          (call $adv)
          (br $next)))
        (if (i32.eqz (local.get $digits)) (then (return (i32.const 0))))))
    (if (i32.eq (i32.or (call $peek) (i32.const 32)) (i32.const 101))  ;; e or E
      (then
        (call $adv)
        (if (i32.eq (call $peek) (i32.const 45))
          (then (local.set $eneg (i32.const 1)) (call $adv))
          (else (if (i32.eq (call $peek) (i32.const 43)) (then (call $adv)))))
        (local.set $digits (i32.const 0))
        (block $done (loop $next
          (br_if $done (i32.eqz (call $digit (call $peek))))
          (if (i32.lt_u (local.get $e) (i32.const 400))
            (then (local.set $e (i32.add (i32.mul (local.get $e) (i32.const 10))
                                         (i32.sub (call $peek) (i32.const 48))))))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
          (call $adv)
          (br $next)))
        (if (i32.eqz (local.get $digits)) (then (return (i32.const 0))))
        (block $done (loop $next
          (br_if $done (i32.eqz (local.get $e)))
          (if (local.get $eneg)
            (then (local.set $v (f64.div (local.get $v) (f64.const 10))))
            (else (local.set $v (f64.mul (local.get $v) (f64.const 10)))))
          (local.set $e (i32.sub (local.get $e) (i32.const 1)))
          (br $next)))))
    (global.set $num (select (f64.neg (local.get $v)) (local.get $v) (local.get $neg)))
    (i32.const 1))

  (func $scalar_char (param $c i32) (result i32)
    (i32.or
      (i32.or (call $digit (local.get $c))
              (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26)))
      (i32.or (i32.or (i32.eq (local.get $c) (i32.const 45)) (i32.eq (local.get $c) (i32.const 43)))
              (i32.or (i32.eq (local.get $c) (i32.const 46)) (i32.eq (local.get $c) (i32.const 69))))))

  ;; Any value we do not use: strings, numbers, literals, nested objects and arrays.
  (func $skip (result i32) (local $c i32) (local $depth i32)
    (local.set $c (call $peek))
    (if (i32.eq (local.get $c) (i32.const 34)) (then (return (call $string))))
    (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
      (then
        (loop $next
          (local.set $c (call $peek))
          (if (i32.eq (local.get $c) (i32.const -1)) (then (return (i32.const 0))))
          (if (i32.eq (local.get $c) (i32.const 34))
            (then
              (if (i32.eqz (call $string)) (then (return (i32.const 0))))
              (br $next)))
          (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
            (then (local.set $depth (i32.add (local.get $depth) (i32.const 1)))))
          (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93)))
            (then (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))))
          (call $adv)
          (br_if $next (local.get $depth)))
        (return (i32.const 1))))
    (if (i32.eqz (call $scalar_char (local.get $c))) (then (return (i32.const 0))))
    (block $done (loop $next
      (br_if $done (i32.eqz (call $scalar_char (call $peek))))
      (call $adv)
      (br $next)))
    (i32.const 1))

  (func $member (param $kp i32) (param $kl i32) (result i32)
    (if (i32.eq (call $peek) (i32.const 110)) (then (return (call $skip))))  ;; null: absent
    (if (call $eq (local.get $kp) (local.get $kl) (i32.const 1040) (i32.const 5))
      (then
        (if (i32.eqz (call $string)) (then (return (i32.const 0))))
        (global.set $tp (global.get $sp))
        (global.set $tl (global.get $sl))
        (return (i32.const 1))))
    (if (call $eq (local.get $kp) (local.get $kl) (i32.const 1048) (i32.const 6))
      (then
        (if (i32.eqz (call $string)) (then (return (i32.const 0))))
        (global.set $ap (global.get $sp))
        (global.set $al (global.get $sl))
        (return (i32.const 1))))
    (if (call $eq (local.get $kp) (local.get $kl) (i32.const 1056) (i32.const 8))
      (then
        (if (i32.eqz (call $number)) (then (return (i32.const 0))))
        (global.set $position (global.get $num))
        (return (i32.const 1))))
    (if (call $eq (local.get $kp) (local.get $kl) (i32.const 1072) (i32.const 8))
      (then
        (if (i32.eqz (call $number)) (then (return (i32.const 0))))
        (global.set $duration (global.get $num))
        (return (i32.const 1))))
    (call $skip))

  (func $trailing (result i32)
    (call $ws)
    (i32.eq (global.get $pos) (global.get $end)))

  (func $parse (param $in i32) (param $len i32) (result i32)
    (local $kp i32) (local $kl i32) (local $c i32)
    (global.set $pos (local.get $in))
    (global.set $end (i32.add (local.get $in) (local.get $len)))
    (global.set $tl (i32.const -1))
    (global.set $al (i32.const -1))
    (global.set $position (f64.const -1))
    (global.set $duration (f64.const -1))
    (call $ws)
    (if (i32.eqz (call $expect (i32.const 123))) (then (return (i32.const 0))))
    (call $ws)
    (if (i32.eq (call $peek) (i32.const 125)) (then (call $adv) (return (call $trailing))))
    (loop $members
      (call $ws)
      (if (i32.eqz (call $string)) (then (return (i32.const 0))))
      (local.set $kp (global.get $sp))
      (local.set $kl (global.get $sl))
      (call $ws)
      (if (i32.eqz (call $expect (i32.const 58))) (then (return (i32.const 0))))
      (call $ws)
      (if (i32.eqz (call $member (local.get $kp) (local.get $kl))) (then (return (i32.const 0))))
      (call $ws)
      (local.set $c (call $peek))
      (call $adv)
      (br_if $members (i32.eq (local.get $c) (i32.const 44)))
      (if (i32.ne (local.get $c) (i32.const 125)) (then (return (i32.const 0)))))
    (call $trailing))

  ;; --- output ----------------------------------------------------------------------------

  (func $put (param $c i32)
    (i32.store8 (global.get $out) (local.get $c))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))

  (func $copy (param $p i32) (param $n i32)
    (memory.copy (global.get $out) (local.get $p) (local.get $n))
    (global.set $out (i32.add (global.get $out) (local.get $n))))

  (func $uint (param $v i64)
    (if (i64.ge_u (local.get $v) (i64.const 10))
      (then (call $uint (i64.div_u (local.get $v) (i64.const 10)))))
    (call $put (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10))))))

  (func $two (param $v i64)
    (call $put (i32.add (i32.const 48) (i32.wrap_i64 (i64.div_u (local.get $v) (i64.const 10)))))
    (call $put (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10))))))

  ;; m:ss, or h:mm:ss from one hour on; negative and NaN read as 0.
  (func $clock (param $t f64) (local $s i64)
    (local.set $s (i64.trunc_sat_f64_u
      (f64.min (f64.max (local.get $t) (f64.const 0)) (f64.const 360000000))))
    (if (i64.ge_u (local.get $s) (i64.const 3600))
      (then
        (call $uint (i64.div_u (local.get $s) (i64.const 3600)))
        (call $put (i32.const 58))
        (call $two (i64.div_u (i64.rem_u (local.get $s) (i64.const 3600)) (i64.const 60))))
      (else (call $uint (i64.div_u (local.get $s) (i64.const 60)))))
    (call $put (i32.const 58))
    (call $two (i64.rem_u (local.get $s) (i64.const 60))))

  (func $packed (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))

  (func $len0 (param $n i32) (result i32)
    (select (local.get $n) (i32.const 0) (i32.gt_s (local.get $n) (i32.const 0))))

  ;; --- the ABI exports -------------------------------------------------------------------

  (func (export "call") (param $m i32) (param $ml i32) (param $in i32) (param $il i32) (result i64)
    (local $buf i32)
    (if (i32.eqz (call $eq (local.get $m) (local.get $ml) (i32.const 1024) (i32.const 6)))
      (then (return (call $packed (i32.const 1200) (i32.const 90)))))
    (if (i32.eqz (call $parse (local.get $in) (local.get $il)))
      (then (return (call $packed (i32.const 1400) (i32.const 142)))))
    (local.set $buf (call $alloc (i32.add (i32.add (call $len0 (global.get $tl)) (call $len0 (global.get $al)))
                                          (i32.const 96))))
    (if (i32.eqz (local.get $buf)) (then (unreachable)))  ;; out of memory
    (global.set $out (local.get $buf))
    (call $copy (i32.const 1088) (i32.const 9))
    (if (i32.gt_s (global.get $al) (i32.const 0))
      (then
        (call $copy (global.get $ap) (global.get $al))
        (call $copy (i32.const 1184) (i32.const 3))))
    (if (i32.gt_s (global.get $tl) (i32.const 0))
      (then (call $copy (global.get $tp) (global.get $tl)))
      (else (call $copy (i32.const 1104) (i32.const 13))))
    (if (i32.or (f64.ge (global.get $position) (f64.const 0)) (f64.gt (global.get $duration) (f64.const 0)))
      (then
        (call $put (i32.const 32))
        (call $put (i32.const 32))
        (call $clock (global.get $position))
        (if (f64.gt (global.get $duration) (f64.const 0))
          (then
            (call $put (i32.const 47))
            (call $clock (global.get $duration))))))
    (call $put (i32.const 34))
    (call $put (i32.const 125))
    (call $packed (local.get $buf) (i32.sub (global.get $out) (local.get $buf))))

  (func (export "health") (result i32)
    (i32.const 0))

  ;; The config is accepted as it is; anything but an object is refused.
  (func (export "init") (param $p i32) (param $n i32) (result i32)
    (global.set $pos (local.get $p))
    (global.set $end (i32.add (local.get $p) (local.get $n)))
    (call $ws)
    (if (i32.ne (call $peek) (i32.const 123))
      (then
        (call $log (i32.const 3) (i32.const 1152) (i32.const 28))
        (return (i32.const 1))))
    (call $log (i32.const 1) (i32.const 1120) (i32.const 17))
    (i32.const 0))
)
