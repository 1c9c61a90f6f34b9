import { Global, Module } from '@nestjs/common';
import { SAMPLE_CONFIG, sampleConfig } from './app.config.js';

/** Makes the {@link SampleConfig} injectable everywhere under the `SAMPLE_CONFIG` token. */
@Global()
@Module({
  providers: [{ provide: SAMPLE_CONFIG, useValue: sampleConfig }],
  exports: [SAMPLE_CONFIG],
})
export class SampleConfigModule {}
