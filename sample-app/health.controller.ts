import { Controller, Get, Inject } from '@nestjs/common';
import { SAMPLE_CONFIG, type SampleConfig } from './app.config.js';

/** `GET /health`: answers once the app listens, e.g. for the demo script or a load balancer. */
@Controller('health')
export class HealthController {
  constructor(@Inject(SAMPLE_CONFIG) private readonly config: SampleConfig) {}

  @Get()
  check(): { status: 'ok'; instance: string } {
    return { status: 'ok', instance: this.config.instance };
  }
}
