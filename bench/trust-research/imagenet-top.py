# Writes $TRUST_DIR/features/imagenet_top.f32: the 1000-class top ("predictions") of ../shared's MobileNetV2 1.0,
# dequantized (kernel [1280, 1000] row-major, then bias [1000]), for imagenet.ts. Needs numpy.
import json, os
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
model_dir = os.path.join(here, '../../../shared/models/mobilenet_v2_1.0_224')
out_dir = os.path.join(os.environ.get('TRUST_DIR', os.path.join(here, '../results/trust')), 'features')
m = json.load(open(os.path.join(model_dir, 'model.json')))
group = m['weightsManifest'][0]
buf = open(os.path.join(model_dir, group['paths'][0]), 'rb').read()
offset, weights = 0, {}
for w in group['weights']:
    n = int(np.prod(w['shape']))
    q = w.get('quantization')
    if q and q['dtype'] == 'uint8':
        v = np.frombuffer(buf, np.uint8, n, offset).astype(np.float32) * q['scale'] + q['min']
        offset += n
    elif q and q['dtype'] == 'float16':
        v = np.frombuffer(buf, np.float16, n, offset).astype(np.float32)
        offset += 2 * n
    else:
        v = np.frombuffer(buf, np.float32, n, offset)
        offset += 4 * n
    weights[w['name']] = v.reshape(w['shape'])
os.makedirs(out_dir, exist_ok=True)
top = np.concatenate([weights['predictions/kernel'].ravel(), weights['predictions/bias']]).astype(np.float32)
top.tofile(os.path.join(out_dir, 'imagenet_top.f32'))
