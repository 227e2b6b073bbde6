#!/usr/bin/env bash
# Creates (or updates) the SNS platform applications of one app, and prints
# what to pass to `sam deploy`.
#
# CloudFormation has no resource for SNS platform applications, so this script
# does it with the AWS CLI. Run it again to rotate a key: it updates the
# existing applications in place (same ARNs, no redeploy needed).
#
#   infra/platform-apps.sh --app zom [--prefix chatsecure-push] \
#     --apns-key AuthKey_ABCDE12345.p8 --key-id ABCDE12345 \
#     --team-id TEAMID1234 --bundle-id org.chatsecure.Zom \
#     [--environments production,sandbox] [--fcm-service-account firebase-adminsdk.json] \
#     [--events-topic arn:aws:sns:REGION:ACCOUNT:TOPIC] [--region REGION] [--default] \
#     [--delivery-status-role arn:aws:iam::ACCOUNT:role/NAME [--success-sample-rate 0] \
#      [--delivery-status-retention 14]]
#
# --app               the app's short name: its base URL is /<app>/api/v1/
# --prefix            the stack's PlatformApplicationPrefix (default chatsecure-push);
#                     (letters, digits, "_", "-"); the applications are
#                     <prefix>.<app>-apns, -apns-sandbox, -fcm
# --environments      the APNs environments to create, both by default from the one
#                     .p8 key (APNs token keys sign for both): production (APNS, App
#                     Store and TestFlight builds), sandbox (APNS_SANDBOX, development
#                     builds). With both, the server finds each device's environment.
# --sandbox           the same as --environments sandbox
# --events-topic      SNS topic for EventDeliveryFailure, EventEndpointUpdated and
#                     EventEndpointDeleted (where SNS reports dead tokens)
# --region            the stack's region; default AWS_REGION, then AWS_DEFAULT_REGION
# --default           print the default app's parameters (served at /api/v1/ too)
#                     instead of an entry of the Apps parameter
# --delivery-status-role
#                     the stack's DeliveryStatusRoleArn output (DeliveryStatusLogging=enabled):
#                     SNS logs every failed delivery of these applications to CloudWatch
#                     Logs (FailureFeedbackRoleArn, SuccessFeedbackRoleArn). Without it the
#                     applications' logging attributes are left as they are.
# --success-sample-rate
#                     the percentage of successful deliveries logged too (0-100, default 0)
# --delivery-status-retention
#                     days kept (default 14; as the stack's DeliveryStatusLogRetentionDays):
#                     for an app of the Apps parameter, the script makes its log groups
#                     sns/<region>/<account>/app/<PLATFORM>/<name>[/Failure] with this
#                     retention (the stack makes the default app's, so not with --default)
# The AWS CLI's usual configuration applies (AWS_PROFILE, credentials, ...).
# Any AWS error stops the script with a non-zero exit and the CLI's message.
set -euo pipefail
# A failure inside $(...) stops the script too.
shopt -s inherit_errexit

app="" prefix=chatsecure-push apns_key="" key_id="" team_id="" bundle_id=""
environments=production,sandbox fcm="" topic="" region="" default=0
status_role="" sample_rate="" retention=""
while [ $# -gt 0 ]; do
  case "$1" in
    --app) app=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --apns-key) apns_key=$2; shift 2 ;;
    --key-id) key_id=$2; shift 2 ;;
    --team-id) team_id=$2; shift 2 ;;
    --bundle-id) bundle_id=$2; shift 2 ;;
    --environments) environments=$2; shift 2 ;;
    --sandbox) environments=sandbox; shift ;;
    --default) default=1; shift ;;
    --fcm-service-account) fcm=$2; shift 2 ;;
    --events-topic) topic=$2; shift 2 ;;
    --region) region=$2; shift 2 ;;
    --delivery-status-role) status_role=$2; shift 2 ;;
    --success-sample-rate) sample_rate=$2; shift 2 ;;
    --delivery-status-retention) retention=$2; shift 2 ;;
    -h|--help) sed -n '2,44p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for required in app apns_key key_id team_id bundle_id; do
  if [ -z "${!required}" ]; then
    echo "missing --${required//_/-} (see --help)" >&2
    exit 2
  fi
done
# The names the functions accept (functions/aws/src/config.rs).
[[ "$app" =~ ^[a-z0-9][a-z0-9-]{0,31}$ && "$app" != api ]] ||
  { echo "--app: 1-32 of a-z, 0-9 and '-', not starting with '-', not \"api\"" >&2; exit 2; }
[[ "$prefix" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || { echo "--prefix: 1-64 of letters, digits, '_', '-' (no '.': it ends the prefix)" >&2; exit 2; }
production=0 sandbox=0
for environment in ${environments//,/ }; do
  case "$environment" in
    production) production=1 ;;
    sandbox) sandbox=1 ;;
    *) echo "--environments: production, sandbox or both, not \"$environment\"" >&2; exit 2 ;;
  esac
done
[ $((production + sandbox)) -gt 0 ] || { echo "--environments: name at least one" >&2; exit 2; }
[ -r "$apns_key" ] || { echo "cannot read the APNs key $apns_key" >&2; exit 2; }
[ -z "$fcm" ] || [ -r "$fcm" ] || { echo "cannot read the FCM service account $fcm" >&2; exit 2; }
if [ -n "$status_role" ]; then
  [[ "$status_role" =~ ^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$ ]] ||
    { echo "--delivery-status-role: an IAM role ARN (the stack's DeliveryStatusRoleArn output)" >&2; exit 2; }
  sample_rate=${sample_rate:-0}
  [[ "$sample_rate" =~ ^(100|[1-9]?[0-9])$ ]] || { echo "--success-sample-rate: 0-100" >&2; exit 2; }
  # CloudWatch Logs' retention values (as DeliveryStatusLogRetentionDays).
  retention=${retention:-14}
  [[ " 1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653 " == *" $retention "* ]] ||
    { echo "--delivery-status-retention: one of CloudWatch Logs' values (1, 3, 5, 7, 14, 30, 60, 90, ...)" >&2; exit 2; }
elif [ -n "$sample_rate$retention" ]; then
  echo "--success-sample-rate and --delivery-status-retention need --delivery-status-role" >&2
  exit 2
fi
command -v aws >/dev/null || { echo "the AWS CLI (aws) is required" >&2; exit 2; }
# The CLI from `make deploy-tools` (v1) reads AWS_DEFAULT_REGION only, so the
# region is always passed explicitly.
region=${region:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}
[ -n "$region" ] || { echo "no region: pass --region or set AWS_REGION" >&2; exit 2; }

fail() {
  echo "platform-apps: $*" >&2
  exit 1
}

awscli() {
  aws --region "$region" "$@" || fail "aws $1 $2 failed (see the message above)"
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

# attributes_file OUT KEY=FILE|KEY=VALUE... : a JSON attributes map; values
# given as @path are read from that file (keys stay out of argv and logs).
attributes_file() {
  local out=$1; shift
  python3 - "$out" "$@" <<'PY'
import json, sys
out, pairs = sys.argv[1], sys.argv[2:]
attrs = {}
for pair in pairs:
    key, value = pair.split("=", 1)
    if value.startswith("@"):
        value = open(value[1:]).read()
    if value:
        attrs[key] = value
json.dump(attrs, open(out, "w"))
PY
}

# What SNS reports back, and where: dead tokens to the events topic, and
# (delivery-status logging) every failure and this share of the successes
# to CloudWatch Logs.
feedback=()
if [ -n "$topic" ]; then
  feedback=("EventDeliveryFailure=$topic" "EventEndpointUpdated=$topic" "EventEndpointDeleted=$topic")
fi
if [ -n "$status_role" ]; then
  feedback+=("FailureFeedbackRoleArn=$status_role" "SuccessFeedbackRoleArn=$status_role"
    "SuccessFeedbackSampleRate=$sample_rate")
fi

# ensure_app NAME PLATFORM ATTRIBUTES_FILE: prints the application's ARN.
ensure_app() {
  local app_name=$1 platform=$2 attrs=$3 arn
  local existing
  existing=$(awscli sns list-platform-applications --query "PlatformApplications[].PlatformApplicationArn" --output text)
  arn=$(printf '%s\n' "$existing" | tr '\t' '\n' | grep -E ":app/$platform/$app_name\$" || true)
  if [ -n "$arn" ]; then
    awscli sns set-platform-application-attributes --platform-application-arn "$arn" --attributes "file://$attrs" >/dev/null
    echo "updated $arn" >&2
  else
    arn=$(awscli sns create-platform-application --name "$app_name" --platform "$platform" \
      --attributes "file://$attrs" --query PlatformApplicationArn --output text)
    [[ "$arn" == arn:*":app/$platform/$app_name" ]] || fail "creating $app_name returned no ARN (got \"$arn\")"
    echo "created $arn" >&2
  fi
  echo "$arn"
}

# One .p8 key for both environments: APNs token keys sign for either.
attributes_file "$workdir/apns.json" \
  "PlatformCredential=@$apns_key" "PlatformPrincipal=$key_id" \
  "ApplePlatformTeamID=$team_id" "ApplePlatformBundleID=$bundle_id" "${feedback[@]}"
base="$prefix.$app"
arns=()
apns_arn="" sandbox_arn="" gcm_arn=""
if [ "$production" = 1 ]; then
  apns_arn=$(ensure_app "$base-apns" APNS "$workdir/apns.json")
  arns+=("$apns_arn")
fi
if [ "$sandbox" = 1 ]; then
  sandbox_arn=$(ensure_app "$base-apns-sandbox" APNS_SANDBOX "$workdir/apns.json")
  arns+=("$sandbox_arn")
fi
if [ -n "$fcm" ]; then
  attributes_file "$workdir/gcm.json" "PlatformCredential=@$fcm" "${feedback[@]}"
  gcm_arn=$(ensure_app "$base-fcm" GCM "$workdir/gcm.json")
  arns+=("$gcm_arn")
fi

# ensure_status_logs ARN: makes the application's delivery-status log groups
# (SNS's names for them) if missing, and sets their retention. SNS would make
# them itself on its first write, kept forever.
ensure_status_logs() {
  local arn=$1 fields group existing
  IFS=: read -r -a fields <<<"$arn"
  for group in "sns/${fields[3]}/${fields[4]}/${fields[5]}" "sns/${fields[3]}/${fields[4]}/${fields[5]}/Failure"; do
    existing=$(awscli logs describe-log-groups --log-group-name-prefix "$group" \
      --query "logGroups[?logGroupName=='$group'].logGroupName" --output text)
    if [ -z "$existing" ]; then
      awscli logs create-log-group --log-group-name "$group"
    fi
    awscli logs put-retention-policy --log-group-name "$group" --retention-in-days "$retention"
    echo "delivery-status logs $group kept $retention days" >&2
  done
}
if [ -n "$status_role" ]; then
  if [ "$default" = 1 ]; then
    echo "the stack makes the default app's delivery-status log groups (DeliveryStatusLogRetentionDays)" >&2
  else
    for arn in "${arns[@]}"; do
      ensure_status_logs "$arn"
    done
  fi
fi

echo
if [ "$default" = 1 ]; then
  # The default app's APNs parameter takes either environment; the sandbox
  # one has a parameter of its own when there are both.
  first_apns=${apns_arn:-$sandbox_arn}
  second_apns=""
  [ -n "$apns_arn" ] && second_apns=$sandbox_arn
  echo "Pass these to sam deploy:"
  echo "  --parameter-overrides DefaultAppName=$app PlatformApplicationPrefix=$prefix ApnsPlatformApplicationArn=$first_apns${second_apns:+ ApnsSandboxPlatformApplicationArn=$second_apns}${gcm_arn:+ GcmPlatformApplicationArn=$gcm_arn}"
else
  entry="$app=$(IFS=,; echo "${arns[*]}")"
  echo "Add this entry to the Apps parameter of sam deploy (entries are separated by \";\"),"
  echo "with PlatformApplicationPrefix=$prefix:"
  echo "  $entry"
  echo "The app's base URL is then https://<api>/$app/api/v1/."
fi
