;; SIMD (128-bit) kernels of tfjs-transfer's wasm training path, run on the wasm backend's own memory (imported),
;; so they read and write tensors where they are, without copies. Compiled by `npm run build:wasm-simd` into
;; src/train/wasm-simd-module.ts (the bytes, base64); test/unit/wasm-simd.test.ts checks the two agree.
;; Every pointer is a byte offset into that memory; counts of float32 lanes are multiples of 4 (the caller does the rest).
(module
  (import "env" "memory" (memory 1))

  ;; Depthwise filter gradient of one image (channel multiplier 1):
  ;; acc[kh, kw, c] += Σ_{y, x} x[y·sh + kh·dh − top, x·sw + kw·dw − left, c] · g[y, x, c]   (f32, c % 4 == 0)
  (func (export "dw_filter_image")
    (param $x i32) (param $g i32) (param $acc i32)
    (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32) (param $dh i32) (param $dw i32)
    (param $top i32) (param $left i32)
    (local $y i32) (local $kh i32) (local $xo i32) (local $kw i32) (local $iy i32) (local $ix i32)
    (local $gp i32) (local $xp i32) (local $ap i32) (local $end i32) (local $cb i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $y (i32.const 0))
    (block $y_done (loop $y_loop
      (br_if $y_done (i32.ge_s (local.get $y) (local.get $oh)))
      (local.set $kh (i32.const 0))
      (block $kh_done (loop $kh_loop
        (br_if $kh_done (i32.ge_s (local.get $kh) (local.get $fh)))
        (local.set $iy (i32.sub (i32.add (i32.mul (local.get $y) (local.get $sh)) (i32.mul (local.get $kh) (local.get $dh))) (local.get $top)))
        (if (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $h)))
          (then
            (local.set $xo (i32.const 0))
            (block $xo_done (loop $xo_loop
              (br_if $xo_done (i32.ge_s (local.get $xo) (local.get $ow)))
              (local.set $kw (i32.const 0))
              (block $kw_done (loop $kw_loop
                (br_if $kw_done (i32.ge_s (local.get $kw) (local.get $fw)))
                (local.set $ix (i32.sub (i32.add (i32.mul (local.get $xo) (local.get $sw)) (i32.mul (local.get $kw) (local.get $dw))) (local.get $left)))
                (if (i32.and (i32.ge_s (local.get $ix) (i32.const 0)) (i32.lt_s (local.get $ix) (local.get $w)))
                  (then
                    (local.set $gp (i32.add (local.get $g) (i32.mul (i32.add (i32.mul (local.get $y) (local.get $ow)) (local.get $xo)) (local.get $cb))))
                    (local.set $xp (i32.add (local.get $x) (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $w)) (local.get $ix)) (local.get $cb))))
                    (local.set $ap (i32.add (local.get $acc) (i32.mul (i32.add (i32.mul (local.get $kh) (local.get $fw)) (local.get $kw)) (local.get $cb))))
                    (local.set $end (i32.add (local.get $ap) (local.get $cb)))
                    (block $c_done (loop $c_loop
                      (br_if $c_done (i32.ge_u (local.get $ap) (local.get $end)))
                      (v128.store (local.get $ap)
                        (f32x4.add (v128.load (local.get $ap))
                          (f32x4.mul (v128.load (local.get $xp)) (v128.load (local.get $gp)))))
                      (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
                      (local.set $xp (i32.add (local.get $xp) (i32.const 16)))
                      (local.set $gp (i32.add (local.get $gp) (i32.const 16)))
                      (br $c_loop)))))
                (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                (br $kw_loop)))
              (local.set $xo (i32.add (local.get $xo) (i32.const 1)))
              (br $xo_loop)))))
        (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
        (br $kh_loop)))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br $y_loop))))

  ;; Gradient of clipByValue: o = min <= x <= max ? g : 0 (a NaN x gives 0), n lanes.
  (func (export "clip_grad") (param $g i32) (param $x i32) (param $o i32) (param $n i32) (param $min f32) (param $max f32)
    (local $end i32) (local $lo v128) (local $hi v128) (local $xv v128)
    (local.set $lo (f32x4.splat (local.get $min)))
    (local.set $hi (f32x4.splat (local.get $max)))
    (local.set $end (i32.add (local.get $o) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $xv (v128.load (local.get $x)))
      (v128.store (local.get $o)
        (v128.and (v128.load (local.get $g))
          (v128.and (f32x4.ge (local.get $xv) (local.get $lo)) (f32x4.le (local.get $xv) (local.get $hi)))))
      (local.set $g (i32.add (local.get $g) (i32.const 16)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $next))))

  ;; Gradient of relu: o = x > 0 ? g : 0, and NaN where x is NaN (as g · step(x)), n lanes.
  (func (export "relu_grad") (param $g i32) (param $x i32) (param $o i32) (param $n i32)
    (local $end i32) (local $zero v128) (local $xv v128)
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $end (i32.add (local.get $o) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $xv (v128.load (local.get $x)))
      (v128.store (local.get $o)
        (v128.bitselect (local.get $xv)
          (v128.and (v128.load (local.get $g)) (f32x4.gt (local.get $xv) (local.get $zero)))
          (f32x4.ne (local.get $xv) (local.get $xv))))
      (local.set $g (i32.add (local.get $g) (i32.const 16)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $next))))

;; One Adam update, the operations and roundings of tfjs-core's AdamOptimizer (f32 throughout), n lanes:
;; m' = m·b1 + g·c1;  v' = v·b2 + (g·g)·c2;  w' = ((m' / a1) / (sqrt(v' / a2) + eps))·nlr + w
;; (c1 = 1 − β1, c2 = 1 − β2, a1 = 1 − β1^t, a2 = 1 − β2^t, nlr = −learning rate), written to om, ov, ow.
  (func (export "adam")
    (param $w i32) (param $m i32) (param $v i32) (param $g i32) (param $ow i32) (param $om i32) (param $ov i32) (param $n i32)
    (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $a1 f32) (param $a2 f32) (param $eps f32) (param $nlr f32)
    (local $end i32) (local $gv v128) (local $mv v128) (local $vv v128)
    (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128) (local $A1 v128) (local $A2 v128) (local $E v128) (local $L v128)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $A1 (f32x4.splat (local.get $a1)))
    (local.set $A2 (f32x4.splat (local.get $a2)))
    (local.set $E (f32x4.splat (local.get $eps)))
    (local.set $L (f32x4.splat (local.get $nlr)))
    (local.set $end (i32.add (local.get $ow) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $ow) (local.get $end)))
      (local.set $gv (v128.load (local.get $g)))
      (local.set $mv (f32x4.add (f32x4.mul (v128.load (local.get $m)) (local.get $B1)) (f32x4.mul (local.get $gv) (local.get $C1))))
      (local.set $vv (f32x4.add (f32x4.mul (v128.load (local.get $v)) (local.get $B2))
        (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $C2))))
      (v128.store (local.get $om) (local.get $mv))
      (v128.store (local.get $ov) (local.get $vv))
      (v128.store (local.get $ow)
        (f32x4.add
          (f32x4.mul
            (f32x4.div (f32x4.div (local.get $mv) (local.get $A1))
              (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $A2))) (local.get $E)))
            (local.get $L))
          (v128.load (local.get $w))))
      (local.set $w (i32.add (local.get $w) (i32.const 16)))
      (local.set $m (i32.add (local.get $m) (i32.const 16)))
      (local.set $v (i32.add (local.get $v) (i32.const 16)))
      (local.set $g (i32.add (local.get $g) (i32.const 16)))
      (local.set $ow (i32.add (local.get $ow) (i32.const 16)))
      (local.set $om (i32.add (local.get $om) (i32.const 16)))
      (local.set $ov (i32.add (local.get $ov) (i32.const 16)))
      (br $next))))

  ;; Column sums: acc[c] += Σ_{r < rows} x[r, c] (f32, cols % 4 == 0), for a block of rows.
  (func (export "col_sum") (param $x i32) (param $acc i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $ap i32) (local $end i32) (local $cb i32)
    (local.set $cb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $r (i32.const 0))
    (block $r_done (loop $r_loop
      (br_if $r_done (i32.ge_s (local.get $r) (local.get $rows)))
      (local.set $ap (local.get $acc))
      (local.set $end (i32.add (local.get $acc) (local.get $cb)))
      (block $c_done (loop $c_loop
        (br_if $c_done (i32.ge_u (local.get $ap) (local.get $end)))
        (v128.store (local.get $ap) (f32x4.add (v128.load (local.get $ap)) (v128.load (local.get $x))))
        (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $c_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r_loop))))
)
