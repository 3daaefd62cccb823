/**
 * Guide: saving, loading and deploying (docs/guides/deploy.md): a minimal Node HTTP service.
 *
 * Loads a model saved with `save()` and classifies images POSTed to it. Node built-ins only (node:http), no
 * framework; one model in memory, predictions one request at a time (tfjs runs one op at a time anyway).
 *
 *   node --import tsx examples/guides/getting-started.ts --per-class 50 --save ./my-model   # train and save once
 *   node --import tsx examples/guides/deploy-service.ts --model ./my-model --port 8080
 *   curl --data-binary @cat.jpg http://127.0.0.1:8080/predict
 *   # {"label":"cats","probability":0.97,"probabilities":{"cats":0.97,"dogs":0.03}}
 *
 * In your application: `import { loadModel, predict, decodeImage } from 'tfjs-transfer/node'`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { TransferError, decodeImage, loadModel, predict, type TransferModel } from '../../src/node/index';
import { isMain, useBackend } from './common';

/** Options of {@link startService}. */
export interface ServiceOptions {
  /** The saved model: a folder, a `model.json` path, a `file://` or `http(s)://` URL. Required. */
  model: string;
  /** Port; `0` picks a free one. Default 8080. */
  port?: number;
  /** Interface to listen on. Default `"127.0.0.1"` (this machine only). */
  host?: string;
  /** Largest accepted upload, in bytes. Default 10 MB. */
  maxBytes?: number;
}

/** A running service. */
export interface Service {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The loaded model. */
  model: TransferModel;
  /** Stops listening and frees the model. */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `the image is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) throw new HttpError(400, 'POST the image file as the request body (e.g. curl --data-binary @cat.jpg)');
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Loads the model and starts listening. `GET /health` describes the model; `POST /predict` classifies. */
export async function startService(options: ServiceOptions): Promise<Service> {
  const model = await loadModel(options.model);
  const [height, width] = model.inputShape;
  const maxBytes = options.maxBytes ?? 10 * 1024 * 1024;

  const server = createServer((req, res) => {
    void (async () => {
      try {
        const path = new URL(req.url ?? '/', 'http://localhost').pathname;
        if (req.method === 'GET' && path === '/health') {
          send(res, 200, { status: 'ok', classes: model.classes, inputShape: model.inputShape, backend: tf.getBackend() });
        } else if (req.method === 'POST' && path === '/predict') {
          const bytes = await readBody(req, maxBytes);
          // Decode with sharp (JPEG, PNG, WebP, GIF, BMP; EXIF orientation applied), resized as in training.
          const image = await decodeImage(bytes, { size: [height, width] });
          const pixels = tf.tensor3d(image.data, [image.height, image.width, 3], 'float32');
          try {
            const [p] = await predict(model, pixels);
            send(res, 200, { label: p!.label, probability: p!.probability, probabilities: p!.probabilities });
          } finally {
            pixels.dispose();
          }
        } else {
          send(res, 404, { error: 'GET /health or POST /predict with an image as the body' });
        }
      } catch (error) {
        if (error instanceof HttpError) send(res, error.status, { error: error.message });
        else if (error instanceof TransferError) send(res, 400, { error: error.message, code: error.code });
        else send(res, 500, { error: 'internal error' });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    model,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      model.dispose();
    },
  };
}

/** Starts the service and stops it on Ctrl-C (or SIGTERM). */
export async function main(options: ServiceOptions): Promise<Service> {
  const service = await startService(options);
  console.log(`classifying ${service.model.classes.join(' / ')} at ${service.url}/predict (backend ${tf.getBackend()})`);
  const stop = () => void service.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return service;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { model: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } } });
  if (!values.model) {
    console.error('usage: deploy-service.ts --model <saved model folder> [--port 8080] [--host 127.0.0.1]');
    process.exit(2);
  }
  await useBackend();
  await main({ model: values.model, port: values.port ? Number(values.port) : undefined, host: values.host });
}
