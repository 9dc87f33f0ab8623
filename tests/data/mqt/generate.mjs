// Writes samples.json (beside this script): messages message-queue-toolkit's published SQS publisher really sends
// when it offloads a payload, with the objects its payload store was given. No AWS: the SQS
// client records the SendMessage input, and the store keeps objects in memory under
// S3PayloadStore's key naming (<keyPrefix>/<uuid>).
//
//   cd tests/data/mqt && npm install && node generate.mjs
import { AbstractSqsPublisher } from '@message-queue-toolkit/sqs'
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { z } from 'zod/v4'

const objects = new Map()
const store = {
  async storePayload({ value }) {
    const key = `orders/${randomUUID()}`
    const chunks = []
    if (typeof value === 'string') chunks.push(Buffer.from(value, 'utf8'))
    else for await (const c of value) chunks.push(Buffer.from(c))
    objects.set(key, Buffer.concat(chunks))
    return key
  },
  async retrievePayload(key) {
    return objects.has(key) ? Readable.from(objects.get(key)) : null
  },
}

const sent = []
const sqsClient = {
  config: { region: async () => 'us-east-1' },
  async send(command) {
    const name = command.constructor.name
    if (name === 'SendMessageCommand') {
      sent.push(command.input)
      return { MessageId: randomUUID() }
    }
    if (name === 'GetQueueAttributesCommand') {
      return { Attributes: { QueueArn: 'arn:aws:sqs:us-east-1:000000000000:orders' } }
    }
    if (name === 'GetQueueUrlCommand') return { QueueUrl: 'http://localhost/000000000000/orders' }
    throw new Error(`unexpected ${name}`)
  },
}

const Order = z.object({
  id: z.string(),
  type: z.literal('order.created'),
  timestamp: z.string().optional(),
  lines: z.array(z.string()),
})

class Publisher extends AbstractSqsPublisher {
  constructor() {
    super(
      { sqsClient, logger: console, errorReporter: { report() {} }, messageMetricsManager: undefined },
      {
        messageSchemas: [Order],
        messageTypeResolver: { messageTypePath: 'type' },
        locatorConfig: { queueUrl: 'http://localhost/000000000000/orders' },
        payloadStoreConfig: { store, storeName: 's3', messageSizeThreshold: 4096 },
      },
    )
  }
}

const publisher = new Publisher()
await publisher.publish({ id: 'o-1', type: 'order.created', lines: Array(1000).fill('line') })
await publisher.publish({ id: 'o-2', type: 'order.created', lines: Array(300).fill('ligne é ü 雪') })
await publisher.publish({ id: 'o-3', type: 'order.created', lines: ['small'] })

const samples = sent.map((input) => {
  const body = JSON.parse(input.MessageBody)
  const key = body.payloadRef?.id
  return {
    MessageBody: input.MessageBody,
    MessageAttributes: input.MessageAttributes ?? {},
    object: key ? { key, base64: objects.get(key).toString('base64') } : null,
  }
})
writeFileSync(
  new URL('samples.json', import.meta.url),
  `${JSON.stringify({ generator: 'core@25.4.0 + sqs@24.2.1', samples }, null, 1)}\n`,
)
